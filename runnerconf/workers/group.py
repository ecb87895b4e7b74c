"""``RunnerGroup``: several runners of one topology in one process, sharing one bus.

The group owns the signals (a loop has one handler per signal): the first SIGINT/SIGTERM ends
every runner gracefully, a second cancels them all. Runners talk over the shared bus exactly as
they would over a network bus between processes, registries included.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runnerconf.workers.runner import WorkerResult, WorkerRunner
from runnerconf.workers.signals import SignalHandlers

__all__ = ["RunnerGroup"]


class RunnerGroup:
    """Runs ``runners`` (which must share one bus) until every one of them has ended."""

    def __init__(self, runners: Sequence[WorkerRunner], *, name: str = "runners") -> None:
        if not runners:
            raise ValueError("a runner group needs at least one runner")
        bus = runners[0].bus
        if any(r.bus is not bus for r in runners):
            raise ValueError("the runners of a group must share one bus")
        self.name = name
        self.runners = list(runners)
        self.bus = bus
        first = runners[0]
        self._signals = SignalHandlers(
            name,
            sigint=any(r.handle_sigint for r in runners),
            sigterm=any(r.handle_sigterm for r in runners),
            first=first.on_signal,
            end=self.end,
            cancel=self.cancel,
            grace=max(r.stop_timeout for r in runners),
        )
        for r in runners:  # one owner for signals: the group
            r.handle_sigint = r.handle_sigterm = False
            r.on_sighup = None
        #: Called on SIGHUP (None: SIGHUP is left alone), as WorkerRunner.on_sighup.
        self.on_sighup: Callable[[], Any] | None = None

    async def run(self, auto_end: bool | Mapping[str, bool] = True) -> None:
        """Start the bus, run every runner, stop the bus. ``auto_end`` may be given per runner name."""
        loop = asyncio.get_running_loop()
        owns_bus = not self.bus.running
        await self.bus.start()
        self._signals.reload = self.on_sighup
        if self.on_sighup is not None and signal.SIGHUP not in self._signals.wanted:
            self._signals.wanted.append(signal.SIGHUP)
        self._signals.install(loop)
        try:
            await asyncio.gather(
                *(r.run(auto_end=auto_end if isinstance(auto_end, bool) else auto_end.get(r.name, True)) for r in self.runners)
            )
        finally:
            self._signals.restore(loop)
            await self._signals.wait(max(r.cancel_timeout for r in self.runners))
            if owns_bus:
                await self.bus.stop()

    async def end(self, reason: str | None = None) -> None:
        """Gracefully end every runner."""
        for r in self.runners:
            await r.end(reason)

    async def cancel(self, reason: str | None = None) -> None:
        """Cancel every runner."""
        for r in self.runners:
            await r.cancel(reason)

    @property
    def signals_received(self) -> list[int]:
        return self._signals.received

    @property
    def forced(self) -> bool:
        return self._signals.forced

    @property
    def cancelled(self) -> bool:
        return any(r.cancelled for r in self.runners)

    @property
    def failed(self) -> list[WorkerResult]:
        return [f for r in self.runners for f in r.failed]

    def any_failed(self) -> bool:
        """Whether a worker of any runner failed or was abandoned."""
        return any(r.any_failed() for r in self.runners)

    @property
    def stop_reason(self) -> str | None:
        """Why the runners stopped (the first that says)."""
        return next((r.stop_reason for r in self.runners if r.stop_reason), None)

    def summary(self) -> dict[str, int]:
        """Counts of worker outcomes over every runner."""
        total: dict[str, int] = {}
        for r in self.runners:
            for k, n in r.summary().items():
                total[k] = total.get(k, 0) + n
        return total

    @property
    def results(self) -> dict[str, WorkerResult]:
        """Every worker's result (worker names are unique across a topology)."""
        return {k: v for r in self.runners for k, v in r.results.items()}
