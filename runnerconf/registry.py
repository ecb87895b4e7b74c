"""The worker registry: which workers are ready, on which runner, and who waits for them."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable

from runnerconf.bus.messages import WorkerRegistryEntry

__all__ = ["WatchHandler", "WorkerRegistry"]

logger = logging.getLogger(__name__)

#: A watcher: called with the entry of the worker that became ready; sync or async.
WatchHandler = Callable[[WorkerRegistryEntry], Awaitable[None] | None]


class WorkerRegistry:
    """Ready workers of one runner (local) and of its peers on a network bus (remote).

    A name is registered once per lifetime of its worker: :meth:`unregister` (called when a worker
    finishes) frees it, so a long-lived runner can reuse names. Watchers are one-shot: each fires
    once, when the watched name is first registered after the watch (or at once if it already is).
    A watcher that raises is logged and never disturbs registration or the other watchers.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._entries: dict[str, WorkerRegistryEntry] = {}
        self._watchers: dict[str, list[WatchHandler]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        """The owning runner's name."""
        return self._name

    def register(self, entry: WorkerRegistryEntry) -> bool:
        """Record ``entry`` as ready. Returns False (and notifies nobody) if already known as is."""
        current = self._entries.get(entry.name)
        if current == entry:
            return False
        if current is not None and current.runner != entry.runner:
            logger.warning(
                "worker %r announced by runner %r is already known on runner %r; keeping the newer",
                entry.name,
                entry.runner,
                current.runner,
            )
        self._entries[entry.name] = entry
        self._notify(entry)
        return True

    def unregister(self, name: str) -> WorkerRegistryEntry | None:
        """Forget a worker (it finished). Returns its entry, if it was known."""
        return self._entries.pop(name, None)

    def forget_runner(self, runner: str) -> list[str]:
        """Forget every worker of ``runner``; returns their names."""
        names = [n for n, e in self._entries.items() if e.runner == runner]
        for n in names:
            del self._entries[n]
        return names

    def get(self, name: str) -> WorkerRegistryEntry | None:
        """The entry of a ready worker, or None."""
        return self._entries.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self, runner: str | None = None) -> list[WorkerRegistryEntry]:
        """Every entry, or those of one runner."""
        if runner is None:
            return list(self._entries.values())
        return [e for e in self._entries.values() if e.runner == runner]

    @property
    def local_workers(self) -> list[str]:
        """Names of ready workers on the owning runner."""
        return [n for n, e in self._entries.items() if e.runner == self._name]

    @property
    def remote_workers(self) -> list[str]:
        """Names of ready workers on other runners."""
        return [n for n, e in self._entries.items() if e.runner != self._name]

    # -- watching ------------------------------------------------------------------------------

    def watch(self, name: str, handler: WatchHandler) -> None:
        """Call ``handler(entry)`` once ``name`` is ready (at once if it already is).

        Watching the same (name, handler) twice before it fires registers it once.
        """
        entry = self._entries.get(name)
        if entry is not None:
            self._call(handler, entry)
            return
        handlers = self._watchers.setdefault(name, [])
        if handler not in handlers:
            handlers.append(handler)

    def unwatch(self, name: str, handler: WatchHandler) -> None:
        """Remove a watcher that has not fired yet."""
        handlers = self._watchers.get(name)
        if handlers and handler in handlers:
            handlers.remove(handler)
            if not handlers:
                del self._watchers[name]

    async def wait_for(self, name: str, timeout: float | None = None) -> WorkerRegistryEntry:
        """Wait until ``name`` is ready and return its entry (raises TimeoutError on timeout)."""
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        future: asyncio.Future[WorkerRegistryEntry] = asyncio.get_running_loop().create_future()

        def resolve(e: WorkerRegistryEntry) -> None:
            if not future.done():
                future.set_result(e)

        self.watch(name, resolve)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self.unwatch(name, resolve)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for async watchers still running."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    def _notify(self, entry: WorkerRegistryEntry) -> None:
        # Pop first: a handler that watches the same name again is kept for the next registration
        # instead of firing twice for this one.
        handlers = self._watchers.pop(entry.name, None)
        if handlers:
            for handler in handlers:
                self._call(handler, entry)

    def _call(self, handler: WatchHandler, entry: WorkerRegistryEntry) -> None:
        try:
            result = handler(entry)
        except Exception:
            logger.exception("registry watcher %r for %r failed", handler, entry.name)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(self._guard(result, handler, entry.name))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(awaitable: Awaitable[None], handler: WatchHandler, name: str) -> None:
        try:
            await awaitable
        except Exception:
            logger.exception("registry watcher %r for %r failed", handler, name)

    def __repr__(self) -> str:
        return f"<WorkerRegistry {self._name} workers={len(self._entries)}>"
