"""``WorkerRegistry``: which workers are ready, on which runner, and who watches for them.

Mirrors ``pipecat.registry.WorkerRegistry``: a runner owns one, named after it; workers on this
runner are *local*, those its peers announced over a network bus are *remote*. ``register`` and
``watch`` are coroutines and await the watchers, in order, inside the call, as pipecat does.

Where this one does better: a watcher that raises is logged and never disturbs the registration or
the other watchers; finished workers leave the registry (:meth:`unregister`), so a long-lived
runner can reuse names and stays bounded; and watchers can be removed (:meth:`unwatch`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable

from runnerconf.registry.types import WorkerReadyData, WorkerRegistryEntry

__all__ = ["WatchHandler", "WorkerRegistry"]

logger = logging.getLogger(__name__)

#: A watcher: called with the :class:`WorkerReadyData` of the worker that became ready.
WatchHandler = Callable[[WorkerReadyData], Awaitable[None] | None]

_Known = tuple[WorkerReadyData, WorkerRegistryEntry]


class WorkerRegistry:
    """Ready workers of one runner (local) and of its peers (remote), and watchers on names.

    Watchers are persistent, as in pipecat: one fires every time its name registers anew (a
    worker that finished and started again, a peer runner that restarted), until removed.

    Args:
        runner_name: Name of the runner that owns this registry.
    """

    def __init__(self, runner_name: str) -> None:
        self._runner_name = runner_name
        self._local: dict[str, _Known] = {}
        self._remote: dict[str, dict[str, _Known]] = {}
        self._watches: dict[str, list[WatchHandler]] = {}

    @property
    def runner_name(self) -> str:
        """The owning runner's name."""
        return self._runner_name

    # -- what is known -------------------------------------------------------------------------

    @property
    def local_workers(self) -> list[str]:
        """Names of the ready workers of the owning runner."""
        return list(self._local)

    @property
    def remote_workers(self) -> list[str]:
        """Names of the ready workers of other runners."""
        return [name for workers in self._remote.values() for name in workers]

    @property
    def remote_runners(self) -> list[str]:
        """Names of the runners that have ready workers here."""
        return [r for r, workers in self._remote.items() if workers]

    def _find(self, name: str) -> _Known | None:
        known = self._local.get(name)
        if known is not None:
            return known
        for workers in self._remote.values():
            known = workers.get(name)
            if known is not None:
                return known
        return None

    def get(self, worker_name: str) -> WorkerReadyData | None:
        """The ready worker of that name (local first), or None."""
        known = self._find(worker_name)
        return known[0] if known is not None else None

    def entry(self, worker_name: str) -> WorkerRegistryEntry | None:
        """What its runner said of the worker (parent, active, started_at), or None."""
        known = self._find(worker_name)
        return known[1] if known is not None else None

    def __contains__(self, worker_name: object) -> bool:
        return isinstance(worker_name, str) and self._find(worker_name) is not None

    def __len__(self) -> int:
        return len(self._local) + sum(len(w) for w in self._remote.values())

    def entries(self, runner: str | None = None) -> list[WorkerRegistryEntry]:
        """The entries of ``runner`` (default: the owning runner's)."""
        table = self._local if runner is None or runner == self._runner_name else self._remote.get(runner, {})
        return [entry for _, entry in table.values()]

    # -- registering ---------------------------------------------------------------------------

    async def register(self, worker_data: WorkerReadyData, *, entry: WorkerRegistryEntry | None = None) -> bool:
        """Record a ready worker and await its watchers, in order.

        Returns False (and notifies nobody) when that runner already registered that name.
        ``entry`` adds what the runner said of the worker (default: just its name).
        """
        name = worker_data.worker_name
        local = worker_data.runner == self._runner_name
        if local:
            table = self._local
        else:
            table = self._remote.get(worker_data.runner)
            if table is None:
                table = self._remote[worker_data.runner] = {}
        if name in table:
            if entry is not None:
                table[name] = (table[name][0], entry)  # newer details, same registration
            return False
        existing = self._find(name)
        if existing is not None and existing[0].runner != worker_data.runner:
            logger.warning(
                "worker %r registered on both runner %r and runner %r", name, existing[0].runner, worker_data.runner
            )
        table[name] = (worker_data, entry if entry is not None else WorkerRegistryEntry(name=name))
        handlers = self._watches.get(name)
        if handlers:
            # A copy: a watcher may add or remove watches while being notified.
            for handler in list(handlers):
                await _call(handler, worker_data)
        return True

    def unregister(self, worker_name: str, runner: str | None = None) -> WorkerReadyData | None:
        """Forget a worker (it finished) of ``runner`` (default: the owning runner)."""
        if runner is None or runner == self._runner_name:
            known = self._local.pop(worker_name, None)
        else:
            workers = self._remote.get(runner)
            known = workers.pop(worker_name, None) if workers is not None else None
        return known[0] if known is not None else None

    def forget_runner(self, runner: str) -> list[str]:
        """Forget every worker of a peer ``runner``; returns their names."""
        workers = self._remote.pop(runner, None)
        return list(workers) if workers else []

    # -- watching ------------------------------------------------------------------------------

    async def watch(self, worker_name: str, handler: WatchHandler) -> None:
        """Call ``handler(data)`` whenever ``worker_name`` registers; at once if it is ready now.

        Idempotent per (name, handler).
        """
        handlers = self._watches.get(worker_name)
        if handlers is None:
            handlers = self._watches[worker_name] = []
        elif handler in handlers:
            return
        handlers.append(handler)
        known = self._find(worker_name)
        if known is not None:
            await _call(handler, known[0])

    def unwatch(self, worker_name: str, handler: WatchHandler) -> None:
        """Remove a watcher (no-op if it is not there)."""
        handlers = self._watches.get(worker_name)
        if handlers and handler in handlers:
            handlers.remove(handler)
            if not handlers:
                del self._watches[worker_name]

    def watched(self) -> int:
        """How many (name, handler) watches there are."""
        return sum(len(h) for h in self._watches.values())

    async def wait_for(self, worker_name: str, timeout: float | None = None) -> WorkerReadyData:
        """Wait until ``worker_name`` is ready and return its data (TimeoutError after ``timeout``)."""
        known = self._find(worker_name)
        if known is not None:
            return known[0]
        future: asyncio.Future[WorkerReadyData] = asyncio.get_running_loop().create_future()

        def resolve(data: WorkerReadyData) -> None:
            if not future.done():
                future.set_result(data)

        await self.watch(worker_name, resolve)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self.unwatch(worker_name, resolve)

    def __repr__(self) -> str:
        return f"<WorkerRegistry {self._runner_name} local={len(self._local)} remote={len(self.remote_workers)}>"


async def _call(handler: WatchHandler, data: WorkerReadyData) -> None:
    # A watcher that raises must never disturb the registration nor the other watchers.
    try:
        result = handler(data)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("registry watcher %r for %r failed", handler, data.worker_name)
