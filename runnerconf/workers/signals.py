"""Signal handling for whoever owns the process's lifetime (a runner, or a group of runners).

First signal: a graceful end (or a cancel, when so configured); any later one: a cancel. With a
``reload`` callback, SIGHUP calls it (each time) instead of ending the process. The previous
handlers are put back by :meth:`SignalHandlers.restore`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Literal

__all__ = ["SignalHandlers"]

logger = logging.getLogger(__name__)


class SignalHandlers:
    """Turns SIGINT / SIGTERM into ``end(reason)`` then ``cancel(reason)`` calls.

    Args:
        owner: Name used in log lines.
        sigint, sigterm: Which signals to handle.
        first: What the first signal does: ``"end"`` or ``"cancel"``.
        end, cancel: Coroutine functions taking a reason.
        grace: Shown in the log line of a graceful end (seconds).
        reload: Called on SIGHUP (None: SIGHUP is not handled).
    """

    def __init__(
        self,
        owner: str,
        *,
        sigint: bool,
        sigterm: bool,
        first: Literal["end", "cancel"],
        end: Callable[[str], Awaitable[Any]],
        cancel: Callable[[str], Awaitable[Any]],
        grace: float,
        reload: Callable[[], Any] | None = None,
    ) -> None:
        self.owner = owner
        self.wanted = [s for s, on in ((signal.SIGINT, sigint), (signal.SIGTERM, sigterm)) if on]
        self.reload = reload
        if reload is not None:
            self.wanted.append(signal.SIGHUP)
        self.first = first
        self._end, self._cancel = end, cancel
        self.grace = grace
        #: Signals received, in order.
        self.received: list[int] = []
        self._saved: list[tuple[int, Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def forced(self) -> bool:
        """True once a signal made the owner cancel (a second one, or the first with first=cancel)."""
        return len(self.received) >= 2 or (bool(self.received) and self.first == "cancel")

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.wanted:
            return
        if threading.current_thread() is not threading.main_thread():
            logger.debug("%s: not in the main thread; signals are not handled", self.owner)
            return
        for sig in self.wanted:
            previous = signal.getsignal(sig)
            try:
                loop.add_signal_handler(sig, self._received, sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix loops
                logger.debug("%s: the loop cannot handle %s", self.owner, sig.name)
                continue
            self._saved.append((sig, previous))

    def restore(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._saved:
            sig, previous = self._saved.pop()
            loop.remove_signal_handler(sig)
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)

    async def wait(self, timeout: float) -> None:
        """Wait (bounded) for the end/cancel calls that signals started."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    def _received(self, sig: int) -> None:
        if sig == signal.SIGHUP and self.reload is not None:
            logger.info("%s: SIGHUP received, reloading", self.owner)
            self.reload()
            return
        self.received.append(sig)
        name = signal.Signals(sig).name
        if len(self.received) == 1 and self.first == "end":
            logger.warning(
                "%s: %s received, ending gracefully (within %.1fs; send it again to cancel)", self.owner, name, self.grace
            )
            coro = self._end(f"{name} received")
        else:
            logger.warning("%s: %s received, cancelling", self.owner, name)
            coro = self._cancel(f"{name} received")
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
