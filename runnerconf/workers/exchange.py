"""Registry exchange between runners that share a network bus.

Cost stays linear in the number of workers: a runner announces itself once with its whole roster
(``hello``), each peer answers once, addressed to it alone, and afterwards only changes travel,
coalesced per event-loop turn and addressed to each known peer runner (never broadcast to workers).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from runnerconf.bus.messages import BusWorkerRegistryMessage, WorkerRegistryEntry

if TYPE_CHECKING:
    from runnerconf.workers.runner import WorkerRunner

__all__ = ["RUNNERS", "RegistryExchange"]

#: Bus group every runner joins: a message targeted at it reaches every runner, and no worker.
RUNNERS = "@runners"

logger = logging.getLogger(__name__)


class RegistryExchange:
    """Keeps a runner's registry in step with its peers' over a network bus."""

    def __init__(self, runner: WorkerRunner) -> None:
        self._runner = runner
        self._peers: set[str] = set()
        self._added: dict[str, WorkerRegistryEntry] = {}
        self._removed: set[str] = set()
        self._flush: asyncio.Task[None] | None = None

    @property
    def peers(self) -> set[str]:
        """Names of the other runners heard from."""
        return set(self._peers)

    async def start(self) -> None:
        """Announce this runner (and whatever is already ready on it) to every peer."""
        await self._send(RUNNERS, hello=True)
        on_reconnect = getattr(self._runner.bus, "on_reconnect", None)
        if on_reconnect is not None:
            # Peers may have come, gone or restarted while the connection was down: ask again.
            on_reconnect(self._rehello)

    async def _rehello(self) -> None:
        await self._send(RUNNERS, hello=True)

    async def stop(self) -> None:
        """Flush pending changes, then tell peers this runner has no workers left."""
        if self._flush is not None:
            await self._flush
        runner = self._runner
        try:
            await runner.bus.send(
                BusWorkerRegistryMessage(source=runner.name, target=RUNNERS, runner=runner.name, full=True, left=True)
            )
        except Exception:
            logger.warning("runner %s: could not say goodbye to its peers", runner.name, exc_info=True)

    def added(self, entry: WorkerRegistryEntry) -> None:
        self._removed.discard(entry.name)
        self._added[entry.name] = entry
        self._schedule()

    def removed(self, name: str) -> None:
        # Kept in _added if it is there: peers still learn it was ready (for depends_on).
        self._removed.add(name)
        self._schedule()

    def _schedule(self) -> None:
        if self._flush is None and self._peers:
            self._flush = asyncio.get_running_loop().create_task(self._flush_changes())
        elif not self._peers:
            # Nobody to tell yet; a peer that appears gets the whole roster in its handshake.
            self._added.clear()
            self._removed.clear()

    async def _flush_changes(self) -> None:
        await asyncio.sleep(0)  # coalesce every change made during this loop turn
        self._flush = None
        added, self._added = list(self._added.values()), {}
        removed, self._removed = sorted(self._removed), set()
        runner = self._runner
        for peer in sorted(self._peers):
            try:
                await runner.bus.send(
                    BusWorkerRegistryMessage(
                        source=runner.name, target=peer, runner=runner.name, workers=added, removed=removed
                    )
                )
            except Exception:
                logger.warning("runner %s: registry update to %s failed", runner.name, peer, exc_info=True)

    async def received(self, message: BusWorkerRegistryMessage) -> None:
        runner = self._runner
        peer = message.runner
        if peer == runner.name:
            return
        registry = runner.registry
        if message.full:
            # A whole roster replaces what we knew of that runner (it may have restarted).
            known = {e.name for e in message.workers}
            for entry in registry.entries(peer):
                if entry.name not in known:
                    registry.unregister(entry.name)
        for entry in message.workers:
            runner._ever_ready.add(entry.name)
            registry.register(entry)
        for name in message.removed:
            runner._ever_ready.add(name)  # it was ready, did its work and finished
            known_entry = registry.get(name)
            if known_entry is not None and known_entry.runner == peer:
                registry.unregister(name)
        if message.left:
            self._peers.discard(peer)
            logger.info("runner %s: peer runner %s left", runner.name, peer)
            return
        joined = peer not in self._peers
        if joined:
            self._peers.add(peer)
            logger.info("runner %s: peer runner %s joined", runner.name, peer)
        if message.hello or joined:
            # A hello wants our roster; so does a peer we only now hear of (it answered our hello
            # before our workers were ready, or we missed its hello while disconnected).
            await self._send(peer)

    async def _send(self, target: str | None, *, hello: bool = False) -> None:
        runner = self._runner
        entries = runner.registry.entries(runner.name)
        finished = sorted(runner._finished_ready - {e.name for e in entries})
        await runner.bus.send(
            BusWorkerRegistryMessage(
                source=runner.name,
                target=target,
                runner=runner.name,
                workers=entries,
                removed=finished,
                hello=hello,
                full=True,
            )
        )
