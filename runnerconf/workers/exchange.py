"""Registry exchange between runners that share a bus.

Cost stays linear in the number of workers: a runner announces itself once with its whole roster
(``hello``), each peer answers once, addressed to it alone, and afterwards only changes travel,
coalesced per event-loop turn and addressed to each known peer runner (never broadcast to workers).

A peer cannot make a runner spend unbounded time or memory: a message lists at most
:data:`MAX_ENTRIES` workers, at most :data:`MAX_PEERS` runners and :data:`MAX_REMOTE` remote
workers are kept, and hellos are answered at most :data:`ANSWERS_PER_SECOND` times a second (the
rest are answered together, in one broadcast, a moment later). What is refused is logged once per
peer per minute.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from runnerconf.bus.messages import BusWorkerRegistryMessage
from runnerconf.bus.wire import MAX_REGISTRY_ENTRIES
from runnerconf.registry.types import WorkerReadyData, WorkerRegistryEntry

if TYPE_CHECKING:
    from runnerconf.workers.runner import WorkerRunner

__all__ = ["ANSWERS_PER_SECOND", "MAX_ENTRIES", "MAX_PEERS", "MAX_REMOTE", "RUNNERS", "RegistryExchange"]

#: Bus group every runner joins: a message targeted at it reaches every runner, and no worker.
RUNNERS = "@runners"

#: Workers read from one registry message (the wire refuses longer ones).
MAX_ENTRIES = MAX_REGISTRY_ENTRIES
#: Peer runners known at once.
MAX_PEERS = 256
#: Remote workers known at once, all peers together.
MAX_REMOTE = 100_000
#: Hellos answered one by one per second; beyond, pending answers go out in one broadcast.
ANSWERS_PER_SECOND = 50
_WARN_EVERY = 60.0

logger = logging.getLogger(__name__)


class RegistryExchange:
    """Keeps a runner's registry in step with its peers'."""

    def __init__(self, runner: WorkerRunner) -> None:
        self._runner = runner
        self._peers: set[str] = set()
        self._added: dict[str, WorkerRegistryEntry] = {}
        self._removed: set[str] = set()
        self._flush: asyncio.Task[None] | None = None
        self._answers: list[float] = []  # times of the recent one-by-one answers
        self._owed: set[str] = set()  # peers whose hello waits for the grouped answer
        self._answer_task: asyncio.Task[None] | None = None
        self._warned: dict[tuple[str, str], float] = {}

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
            await self._flush  # peers still learn what changed last (a worker that just finished)
        if self._answer_task is not None:
            self._answer_task.cancel()
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
                    BusWorkerRegistryMessage(source=runner.name, target=peer, runner=runner.name, workers=added, removed=removed)
                )
            except Exception:
                logger.warning("runner %s: registry update to %s failed", runner.name, peer, exc_info=True)

    def _warn(self, peer: str, what: str, message: str, *args: object) -> None:
        now = time.monotonic()
        key = (peer, what)
        if now - self._warned.get(key, -_WARN_EVERY) >= _WARN_EVERY:
            self._warned[key] = now
            if len(self._warned) > 4 * MAX_PEERS:
                self._warned.clear()
            logger.warning(message, *args)

    async def received(self, message: BusWorkerRegistryMessage) -> None:
        runner = self._runner
        peer = message.runner
        if peer == runner.name or not isinstance(peer, str):
            return
        registry = runner.registry
        if message.left:
            registry.forget_runner(peer)
            if peer in self._peers:
                self._peers.discard(peer)
                logger.info("runner %s: peer runner %s left", runner.name, peer)
            return
        joined = peer not in self._peers
        if joined and len(self._peers) >= MAX_PEERS:
            # Its workers are not recorded; its hello is still answered (within the rate), so
            # a flood of forged runners never locks out `runnerconf down` or a real peer's hello.
            self._warn(peer, "peers", "runner %s: not recording runner %r: %d peers known already", runner.name, peer, MAX_PEERS)
            if message.hello:
                await self._answer(peer)
            return
        workers = message.workers
        if len(workers) > MAX_ENTRIES:
            self._warn(peer, "entries", "runner %s: runner %r listed %d workers; reading the first %d", runner.name, peer, len(workers), MAX_ENTRIES)
            workers = workers[:MAX_ENTRIES]
        if message.full:
            # A whole roster replaces what we knew of that runner (it may have restarted).
            known = {e.name for e in workers}
            for entry in registry.entries(peer):
                if entry.name not in known:
                    registry.unregister(entry.name, peer)
        room = MAX_REMOTE - len(registry.remote_workers)
        for entry in workers:
            if not isinstance(entry, WorkerRegistryEntry) or not isinstance(entry.name, str):
                continue
            if registry.entry(entry.name) is None:
                if room <= 0:
                    self._warn(peer, "remote", "runner %s: %d remote workers known; ignoring more from %r", runner.name, MAX_REMOTE, peer)
                    break
                room -= 1
            runner._ever_ready.add(entry.name)
            await registry.register(WorkerReadyData(worker_name=entry.name, runner=peer), entry=entry)
        for name in message.removed[:MAX_ENTRIES]:
            if not isinstance(name, str):
                continue
            runner._ever_ready.add(name)  # it was ready, did its work and finished
            registry.unregister(name, peer)
            runner._remote_finished(name)
        if joined:
            self._peers.add(peer)
            logger.info("runner %s: peer runner %s joined", runner.name, peer)
        if message.hello or joined:
            # A hello wants our roster; so does a peer we only now hear of (it answered our hello
            # before our workers were ready, or we missed its hello while disconnected).
            await self._answer(peer)

    async def _answer(self, peer: str) -> None:
        now = time.monotonic()
        recent = self._answers = [t for t in self._answers if now - t < 1.0]
        if len(recent) < ANSWERS_PER_SECOND and not self._owed:
            recent.append(now)
            await self._send(peer)
            return
        # A burst of hellos (or a forged flood): answer them all at once, shortly.
        self._owed.add(peer)
        if self._answer_task is None:
            self._answer_task = asyncio.get_running_loop().create_task(self._answer_owed())

    async def _answer_owed(self) -> None:
        await asyncio.sleep(1.0)
        self._answer_task = None
        owed, self._owed = self._owed, set()
        if owed:
            await self._send(RUNNERS)

    async def _send(self, target: str | None, *, hello: bool = False) -> None:
        runner = self._runner
        entries = runner.registry.entries(runner.name)
        current = {e.name for e in entries}
        finished = sorted(n for n in runner._finished_ready if n not in current)
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
