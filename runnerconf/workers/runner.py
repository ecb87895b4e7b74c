"""``WorkerRunner``: starts workers, owns signals, ends and cancels them within bounded time."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from runnerconf.bus.async_queue import AsyncQueueBus
from runnerconf.bus.base import WorkerBus
from runnerconf.bus.messages import (
    BusAddWorkerMessage,
    BusCancelMessage,
    BusCancelWorkerMessage,
    BusEndMessage,
    BusEndWorkerMessage,
    BusMessage,
    BusWorkerReadyMessage,
    BusWorkerRegistryMessage,
    WorkerRegistryEntry,
)
from runnerconf.registry import WorkerRegistry
from runnerconf.workers.base_worker import BaseWorker, WorkerState
from runnerconf.workers.exchange import RUNNERS, RegistryExchange
from runnerconf.workers.signals import SignalHandlers

__all__ = ["RUNNERS", "WorkerResult", "WorkerRunner"]

logger = logging.getLogger(__name__)

EVENTS = ("on_ready", "on_error")
SignalAction = Literal["end", "cancel"]


@dataclass(frozen=True, slots=True)
class WorkerResult:
    """How one worker's life ended."""

    name: str
    #: ``finished``, ``failed``, ``cancelled`` or ``abandoned`` (ignored cancellation).
    outcome: str
    duration: float
    root: bool
    error: BaseException | None = None


class WorkerRunner:
    """Runs workers on a bus until they finish or the runner is ended, cancelled or signalled.

    Add workers with :meth:`add_workers` (before or during :meth:`run`), then ``await run()``.

    Stopping is graceful first, forced second: :meth:`end` asks every root worker to finish and gives
    them ``stop_timeout`` seconds; what is still running is then cancelled, and a worker that ignores
    cancellation for ``cancel_timeout`` more seconds is reported and abandoned, so :meth:`run` always
    returns. :meth:`cancel` skips the grace period, also when it comes during one (a second signal).

    Events (register with :meth:`event_handler`; handlers may be sync or async and get the runner
    first): ``on_ready(runner)`` once the queued workers were started; ``on_error(runner, worker,
    exception)`` when a worker fails (its ``on_start`` or ``main`` raised). The other workers go on.

    Args:
        name: Unique among runners sharing a network bus. Default ``runner-<8 hex>``.
        bus: The bus; default a new in-process :class:`AsyncQueueBus`.
        handle_sigint: Handle SIGINT while :meth:`run` runs (previous handler restored after).
        handle_sigterm: Same for SIGTERM.
        force_gc: Run a full garbage collection once the workers are gone.
        loop: The loop :meth:`run` must run on; default whichever loop runs it.
        stop_timeout: Grace period, in seconds, a graceful stop gives workers.
        cancel_timeout: Seconds a cancelled worker gets before it is abandoned.
        on_signal: What the first signal does: ``"end"`` (graceful) or ``"cancel"``. A second
            signal always cancels.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        bus: WorkerBus | None = None,
        handle_sigint: bool = True,
        handle_sigterm: bool = False,
        force_gc: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
        stop_timeout: float = 10.0,
        cancel_timeout: float = 5.0,
        on_signal: SignalAction = "end",
    ) -> None:
        if stop_timeout < 0 or cancel_timeout < 0:
            raise ValueError("stop_timeout and cancel_timeout must be >= 0")
        if on_signal not in ("end", "cancel"):
            raise ValueError(f"on_signal must be 'end' or 'cancel', not {on_signal!r}")
        self._name = name or f"runner-{uuid.uuid4().hex[:8]}"
        self._bus = bus if bus is not None else AsyncQueueBus()
        self._registry = WorkerRegistry(self._name)
        self.handle_sigint = handle_sigint
        self.handle_sigterm = handle_sigterm
        self.force_gc = force_gc
        self.stop_timeout = stop_timeout
        self.cancel_timeout = cancel_timeout
        self.on_signal = on_signal
        self._loop = loop
        self._events: dict[str, list[Callable[..., Any]]] = {e: [] for e in EVENTS}
        self._handler_tasks: set[asyncio.Task[None]] = set()
        self._workers: dict[str, BaseWorker] = {}
        self._queued: list[BaseWorker] = []
        self._live_roots = 0
        self._phase: Literal["idle", "running", "stopping", "done"] = "idle"
        # ("end" | "cancel", reason): what was asked, possibly before run() started.
        self._request: tuple[str, str | None] | None = None
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._escalated: asyncio.Event | None = None
        self._signals = self._signal_handlers()
        self._exchange: RegistryExchange | None = None
        self._never_ready_waiters: dict[str, list[asyncio.Future[None]]] = {}
        # Names known to have been ready (here or on a peer), and local ones that have finished
        # since: a depends_on on a worker that already did its work and left is satisfied.
        self._ever_ready: set[str] = set()
        self._finished_ready: set[str] = set()
        #: Outcome of every worker that ran, by name (a reused name keeps the latest).
        self.results: dict[str, WorkerResult] = {}
        #: True when the runner ended by cancelling (cancel(), second signal, or run() cancelled).
        self.cancelled = False

    # -- properties ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The runner's name."""
        return self._name

    @property
    def bus(self) -> WorkerBus:
        """The bus the runner and its workers talk over."""
        return self._bus

    @property
    def registry(self) -> WorkerRegistry:
        """The registry of ready workers this runner owns."""
        return self._registry

    @property
    def running(self) -> bool:
        """True between the start of :meth:`run` and its teardown."""
        return self._phase == "running"

    def _signal_handlers(self) -> SignalHandlers:
        return SignalHandlers(
            f"runner {self._name}",
            sigint=self.handle_sigint,
            sigterm=self.handle_sigterm,
            first=self.on_signal,
            end=self.end,
            cancel=self.cancel,
            grace=self.stop_timeout,
        )

    @property
    def signals_received(self) -> list[int]:
        """Signals received during :meth:`run`, in order."""
        return self._signals.received

    @property
    def forced(self) -> bool:
        """True when a signal made the runner cancel (a second one, or the first with on_signal=cancel)."""
        return self._signals.forced

    @property
    def failed(self) -> list[WorkerResult]:
        """Results of the workers that failed (raised) or were abandoned."""
        return [r for r in self.results.values() if r.outcome in ("failed", "abandoned")]

    def get_worker(self, name: str) -> BaseWorker | None:
        """A worker of this runner that has not finished yet, or None."""
        return self._workers.get(name)

    async def wait_ready(self, name: str) -> None:
        """Wait until the worker ``name`` is ready (here or on a peer runner).

        Raises:
            RuntimeError: a local worker of that name finished without ever becoming ready.
        """
        if name in self._registry or name in self._ever_ready:
            return  # ready now, or was (a dependency that already did its work and finished)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def ready(entry: WorkerRegistryEntry) -> None:
            if not future.done():
                future.set_result(None)

        self._registry.watch(name, ready)
        self._never_ready_waiters.setdefault(name, []).append(future)
        try:
            await future
        finally:
            self._registry.unwatch(name, ready)
            waiters = self._never_ready_waiters.get(name)
            if waiters is not None and future in waiters:
                waiters.remove(future)
                if not waiters:
                    del self._never_ready_waiters[name]

    def summary(self) -> dict[str, int]:
        """Counts of worker outcomes: finished, failed, cancelled, abandoned."""
        counts = {"finished": 0, "failed": 0, "cancelled": 0, "abandoned": 0}
        for result in self.results.values():
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        return counts

    # -- events --------------------------------------------------------------------------------

    def event_handler(self, event_name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering a handler for ``on_ready`` or ``on_error``."""

        def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
            self.add_event_handler(event_name, handler)
            return handler

        return decorator

    def add_event_handler(self, event_name: str, handler: Callable[..., Any]) -> None:
        """Register ``handler`` for ``event_name`` (ValueError for an unknown event)."""
        if event_name not in self._events:
            raise ValueError(f"unknown event {event_name!r}; expected one of {', '.join(EVENTS)}")
        self._events[event_name].append(handler)

    def _emit(self, event_name: str, *args: Any) -> None:
        # Handlers run in their own tasks: a slow or failing handler never blocks the runner.
        for handler in self._events[event_name]:
            task = asyncio.get_running_loop().create_task(
                self._call_handler(event_name, handler, args), name=f"{self._name}:{event_name}"
            )
            self._handler_tasks.add(task)
            task.add_done_callback(self._handler_tasks.discard)

    async def _call_handler(self, event_name: str, handler: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            result = handler(self, *args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("runner %s: %s handler %r failed", self._name, event_name, handler)

    # -- adding workers ------------------------------------------------------------------------

    async def add_workers(self, *workers: BaseWorker) -> None:
        """Attach workers to this runner's bus and registry, and start them.

        Before :meth:`run` they are queued and started, in order, when it starts; while running,
        each starts at once. A name already in use (or the runner's own) is skipped with an error
        logged. Children a worker adopted before being added come along after it.
        """
        started = False
        for worker in workers:
            name = worker.name
            if name in self._workers or name == self._name:
                logger.error("runner %s: a worker named %r already exists; skipping it", self._name, name)
                continue
            if worker._runner is not None:
                logger.error("runner %s: worker %r belongs to another runner; skipping it", self._name, name)
                continue
            if self._phase in ("stopping", "done"):
                logger.warning("runner %s is stopping; worker %r was not started", self._name, name)
                continue
            worker._attach(self)
            self._workers[name] = worker
            if worker.parent is None:
                self._live_roots += 1
            if self._idle is not None:
                self._idle.clear()
            if self._phase == "running":
                self._start(worker)
                started = True
            else:
                self._queued.append(worker)
            if worker._pending_children:
                children, worker._pending_children = worker._pending_children, []
                await self.add_workers(*children)
        if started:
            # One loop turn: a worker whose on_start does not suspend is ready when this returns.
            await asyncio.sleep(0)

    def _start(self, worker: BaseWorker) -> None:
        worker._task = asyncio.get_running_loop().create_task(
            self._run_worker(worker), name=f"worker:{worker.name}"
        )

    async def _run_worker(self, worker: BaseWorker) -> None:
        logger.info("worker %s started", worker.name, extra={"event": "worker_started", "worker": worker.name})
        try:
            await worker._run()
        except asyncio.CancelledError:
            # Cancelled by the teardown backstop; the task ends normally so nothing re-raises it.
            worker.state = WorkerState.CANCELLED
        except Exception as exc:  # _run records failures itself; this is a bug guard
            worker._fail(exc, "run")
        finally:
            self._worker_done(worker)

    def _worker_ready(self, worker: BaseWorker) -> None:
        entry = WorkerRegistryEntry(
            name=worker.name, runner=self._name, parent=worker.parent, started_at=worker.started_at
        )
        self._ever_ready.add(worker.name)
        self._registry.register(entry)
        if worker.parent is not None:
            self._bus.deliver(
                BusWorkerReadyMessage(
                    source=worker.name, target=worker.parent, runner=self._name, parent=worker.parent
                )
            )
        if self._exchange is not None:
            self._exchange.added(entry)

    def _worker_done(self, worker: BaseWorker, outcome: str | None = None) -> None:
        worker._t_end = time.monotonic()
        if self._workers.get(worker.name) is not worker:
            return
        del self._workers[worker.name]
        entry = self._registry.get(worker.name)
        if entry is not None and entry.runner == self._name:
            self._registry.unregister(worker.name)
            self._finished_ready.add(worker.name)
            if self._exchange is not None:
                self._exchange.removed(worker.name)
        self._bus.unsubscribe(worker.name)
        outcome = outcome or worker.state.value
        if not worker.ready:
            # Whoever waits for it (depends_on) would wait forever: tell them.
            for future in self._never_ready_waiters.pop(worker.name, []):
                if not future.done():
                    future.set_exception(RuntimeError(f"{outcome} without becoming ready"))
        duration = worker.duration or 0.0
        root = worker.parent is None
        self.results[worker.name] = WorkerResult(worker.name, outcome, duration, root, worker.error)
        if root:
            self._live_roots -= 1
        reason = worker.cancel_reason or worker.end_reason
        extra = {"event": "worker_stopped", "worker": worker.name, "outcome": outcome, "duration": round(duration, 6)}
        if outcome == "failed":
            logger.error(
                "worker %s failed after %.3fs: %r",
                worker.name,
                duration,
                worker.error,
                exc_info=worker.error if getattr(worker.error, "log_traceback", True) else None,
                extra=extra,
            )
            self._emit("on_error", worker, worker.error)
        else:
            extra["reason"] = reason
            logger.log(
                logging.WARNING if outcome == "abandoned" else logging.INFO,
                "worker %s %s after %.3fs%s",
                worker.name,
                outcome,
                duration,
                f" ({reason})" if reason else "",
                extra=extra,
            )
        if not self._workers and self._idle is not None:
            self._idle.set()
        if self._wake is not None:
            self._wake.set()

    # -- stopping ------------------------------------------------------------------------------

    async def end(self, reason: str | None = None) -> None:
        """Gracefully end the runner: root workers are asked to finish (children by their parent).

        Idempotent: a later end() is ignored. Called before :meth:`run`, it is kept and applied as
        soon as run() has started the workers.
        """
        if self._request is not None or self._phase == "done":
            return
        self._request = ("end", reason)
        if self._phase == "running":
            self._phase = "stopping"
            await self._send_to_roots(BusEndWorkerMessage, reason)
        self._signal_wake()

    async def cancel(self, reason: str | None = None) -> None:
        """Cancel every worker now.

        Idempotent; a cancel() during a graceful end cuts the grace period short.
        """
        if (self._request is not None and self._request[0] == "cancel") or self._phase == "done":
            return
        self._request = ("cancel", reason)
        self.cancelled = True
        if self._escalated is not None:
            self._escalated.set()
        if self._phase in ("running", "stopping"):
            self._phase = "stopping"
            await self._send_to_roots(BusCancelWorkerMessage, reason)
        self._signal_wake()

    async def stop_when_done(self) -> None:
        """Ask every root worker to finish its queued work and then end (see PipelineWorker)."""
        for worker in [w for w in self._workers.values() if w.parent is None]:
            await worker.stop_when_done()

    async def _send_to_roots(
        self, kind: type[BusEndWorkerMessage] | type[BusCancelWorkerMessage], reason: str | None
    ) -> None:
        for worker in [w for w in self._workers.values() if w.parent is None]:
            await self._bus.send(kind(source=self._name, target=worker.name, reason=reason))

    def _signal_wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # -- bus -----------------------------------------------------------------------------------

    async def on_bus_message(self, message: BusMessage) -> None:
        """React to runner-level messages from others: end, cancel, add-worker, registries."""
        if message.source == self._name:
            return
        if isinstance(message, BusEndMessage):
            logger.info("runner %s: end asked by %s (%s)", self._name, message.source, message.reason)
            await self.end(message.reason)
        elif isinstance(message, BusCancelMessage):
            logger.info("runner %s: cancel asked by %s (%s)", self._name, message.source, message.reason)
            await self.cancel(message.reason)
        elif isinstance(message, BusAddWorkerMessage):
            await self.add_workers(message.worker)
        elif isinstance(message, BusWorkerRegistryMessage) and self._exchange is not None:
            await self._exchange.received(message)

    # -- running -------------------------------------------------------------------------------

    async def run(self, worker: BaseWorker | None = None, *, auto_end: bool = True) -> None:
        """Run the added workers until the runner ends.

        With ``auto_end`` (the default) the runner ends once every root worker it was given has
        finished (at once if there is none); otherwise it runs until :meth:`end`, :meth:`cancel`, a
        signal, or the cancellation of the task awaiting run() -- which sees ``CancelledError``
        once the workers are torn down.

        Args:
            worker: Deprecated: add it with :meth:`add_workers` before calling run().
            auto_end: End once every root worker has finished.
        """
        if worker is not None:
            warnings.warn(
                "passing a worker to WorkerRunner.run() is deprecated; add it with add_workers() first",
                DeprecationWarning,
                stacklevel=2,
            )
            await self.add_workers(worker)
        if self._phase != "idle":
            raise RuntimeError(f"runner {self._name} has already run (phase {self._phase})")
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            raise RuntimeError(f"runner {self._name} was bound to another event loop")
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._escalated = asyncio.Event()
        if not self._workers:
            self._idle.set()
        if self._request is not None and self._request[0] == "cancel":
            self._escalated.set()
        owns_bus = not self._bus.running
        cancelled_from_outside = False
        self._phase = "running"
        try:
            self._bus.subscribe(self, groups=(RUNNERS,))
            # Runners sharing a bus (in this process or over the network) keep each other's
            # registries; a lone runner pays one announcement that nobody answers.
            self._exchange = RegistryExchange(self)
            await self._bus.start()
            self._signals = self._signal_handlers()  # with the options as they are now
            self._signals.install(loop)
            if self._exchange is not None:
                await self._exchange.start()
            queued, self._queued = self._queued, []
            for w in queued:
                self._start(w)
            await asyncio.sleep(0)
            self._emit("on_ready")
            if self._request is not None:
                # end() / cancel() came before run(): apply it now that the workers exist.
                kind, reason = self._request
                self._phase = "stopping"
                msg = BusEndWorkerMessage if kind == "end" else BusCancelWorkerMessage
                await self._send_to_roots(msg, reason)
            while self._request is None and not (auto_end and self._live_roots == 0):
                self._wake.clear()
                await self._wake.wait()
        except asyncio.CancelledError:
            cancelled_from_outside = True
            self.cancelled = True
            self._request = ("cancel", "run() was cancelled")
            self._escalated.set()
        finally:
            self._phase = "stopping"
            try:
                await self._teardown(cancelled_from_outside)
            finally:
                self._phase = "done"
                await self._cleanup(owns_bus, loop)
        if cancelled_from_outside:
            raise asyncio.CancelledError()

    async def _teardown(self, cancelled_from_outside: bool) -> None:
        kind, reason = self._request or ("end", "all root workers finished")
        assert self._escalated is not None
        # Workers that never started (run() failed during setup) have nothing to stop.
        queued, self._queued = self._queued, []
        for w in queued:
            self._worker_done(w, outcome="cancelled")
        if self._workers and kind == "end" and not cancelled_from_outside:
            if self._request is None:
                self._request = (kind, reason)
                await self._send_to_roots(BusEndWorkerMessage, reason)
            if not await self._wait_workers(self.stop_timeout, self._escalated):
                if not self._escalated.is_set():
                    logger.warning(
                        "runner %s: %d worker(s) still running %.1fs after the end was asked; cancelling: %s",
                        self._name,
                        len(self._workers),
                        self.stop_timeout,
                        _names(self._workers),
                    )
                    reason = "stop_timeout expired"
                else:
                    reason = self._request[1] if self._request else reason
        if not self._workers:
            return
        if kind == "end" or cancelled_from_outside:
            await self._send_to_roots(BusCancelWorkerMessage, reason or "runner cancelled")
        if await self._wait_workers(self.cancel_timeout):
            return
        # Backstop: a worker whose bus inbox is stuck never saw the cancel message; cancel its task.
        logger.warning(
            "runner %s: %d worker(s) did not stop after the cancel; cancelling their tasks: %s",
            self._name,
            len(self._workers),
            _names(self._workers),
        )
        for w in list(self._workers.values()):
            if w._task is not None:
                w._task.cancel()
        if await self._wait_workers(self.cancel_timeout):
            return
        logger.error(
            "runner %s: abandoning %d worker(s) that ignore cancellation: %s",
            self._name,
            len(self._workers),
            _names(self._workers),
        )
        for w in list(self._workers.values()):
            self._worker_done(w, outcome="abandoned")

    async def _wait_workers(self, timeout: float, interrupt: asyncio.Event | None = None) -> bool:
        """Wait until no worker is left (True), ``timeout`` passes or ``interrupt`` is set (False)."""
        assert self._idle is not None
        if not self._workers:
            return True
        waiters = {asyncio.ensure_future(self._idle.wait())}
        if interrupt is not None:
            waiters.add(asyncio.ensure_future(interrupt.wait()))
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        return not self._workers

    async def _cleanup(self, owns_bus: bool, loop: asyncio.AbstractEventLoop) -> None:
        self._signals.restore(loop)
        if self._exchange is not None:
            await self._exchange.stop()
        self._bus.unsubscribe(self)
        if owns_bus:
            await self._bus.stop()
        await self._registry.aclose(timeout=self.cancel_timeout)
        await self._signals.wait(self.cancel_timeout)
        current = asyncio.current_task()
        pending = {t for t in self._handler_tasks if t is not current}
        if pending:
            _, still = await asyncio.wait(pending, timeout=self.cancel_timeout)
            for t in still:
                t.cancel()
        if self.force_gc:
            collected = await asyncio.to_thread(gc.collect)
            logger.debug("runner %s: gc collected %d objects", self._name, collected)
        counts = self.summary()
        logger.info(
            "runner %s done: %s",
            self._name,
            ", ".join(f"{n} {k}" for k, n in counts.items() if n or k != "abandoned"),
            extra={"event": "runner_done", "runner": self._name, **counts},
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name} {self._phase} workers={len(self._workers)}>"


def _names(workers: dict[str, BaseWorker], limit: int = 10) -> str:
    names = list(workers)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
