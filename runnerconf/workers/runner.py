"""``WorkerRunner``: starts workers, owns signals, ends and cancels them within bounded time."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import uuid
import warnings
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal

from runnerconf.bus.bus import WorkerBus
from runnerconf.bus.local import AsyncQueueBus
from runnerconf.bus.messages import (
    BusAddWorkerMessage,
    BusCancelMessage,
    BusCancelWorkerMessage,
    BusEndMessage,
    BusEndWorkerMessage,
    BusMessage,
    BusWorkerRegistryMessage,
)
from runnerconf.bus.subscriber import BusSubscriber
from runnerconf.registry import WorkerRegistry
from runnerconf.registry.types import WorkerReadyData, WorkerRegistryEntry
from runnerconf.utils.asyncio.task_manager import BaseTaskManager, TaskManager
from runnerconf.utils.base_object import BaseObject
from runnerconf.workers.base_worker import BaseWorker, WorkerParams, WorkerState
from runnerconf.workers.exchange import RUNNERS, RegistryExchange
from runnerconf.workers.outcomes import Outcomes, RecentNames, WorkerResult, result_of
from runnerconf.workers.signals import SignalHandlers
from runnerconf.workers.stopping import tear_down

__all__ = ["RUNNERS", "FailurePolicy", "WorkerResult", "WorkerRunner"]

logger = logging.getLogger(__name__)

SignalAction = Literal["end", "cancel"]
FailurePolicy = Literal["continue", "end", "cancel"]


class WorkerRunner(BaseObject, BusSubscriber):
    """Runs workers on a bus until they finish or the runner is ended, cancelled or signalled.

    Add workers with :meth:`add_workers` (before or during :meth:`run`), then ``await run()``.

    Stopping is graceful first, forced second: :meth:`end` asks every root worker to finish and gives
    them ``stop_timeout`` seconds; what is still running is then cancelled, and a worker that ignores
    cancellation for ``cancel_timeout`` more seconds is reported and abandoned, so :meth:`run` always
    returns. :meth:`cancel` skips the grace period, also when it comes during one (a second signal).

    Events (``@runner.event_handler(name)``; handlers may be sync or async and get the runner
    first): ``on_ready(runner)`` once the queued workers were started; ``on_error(runner, worker,
    exception)`` when a worker fails (its ``on_start`` or ``main`` raised). The other workers go on,
    unless ``on_failure`` (or the worker's ``required``) says otherwise.

    Args:
        name: Unique among runners sharing a network bus. Default ``runner-<8 hex>``.
        bus: The bus; default a new in-process :class:`AsyncQueueBus`.
        handle_sigint: Handle SIGINT while :meth:`run` runs (previous handler restored after).
        handle_sigterm: Same for SIGTERM.
        force_gc: Run a full garbage collection once the workers are gone.
        check_dangling_tasks: Warn about tasks left on the runner's task manager at the end.
        loop: Deprecated (pipecat 1.5): the loop :meth:`run` must run on; pass ``task_manager``.
        task_manager: The task manager workers share; default one on the loop :meth:`run` runs on.
        stop_timeout: Grace period, in seconds, a graceful stop gives workers.
        cancel_timeout: Seconds a cancelled worker gets before it is abandoned.
        on_signal: What the first signal does: ``"end"`` (graceful) or ``"cancel"``. A second
            signal always cancels.
        on_failure: When a worker fails for good: ``"continue"`` (the others go on), ``"end"`` or
            ``"cancel"`` the runner. A worker with ``required = True`` ends the runner (cancels
            it, with ``on_failure="cancel"``) whatever this says.
    """

    _event_names = ("on_ready", "on_error")

    def __init__(
        self,
        *,
        name: str | None = None,
        bus: WorkerBus | None = None,
        handle_sigint: bool = True,
        handle_sigterm: bool = False,
        force_gc: bool = False,
        check_dangling_tasks: bool = True,
        loop: asyncio.AbstractEventLoop | None = None,
        task_manager: BaseTaskManager | None = None,
        stop_timeout: float = 10.0,
        cancel_timeout: float = 5.0,
        on_signal: SignalAction = "end",
        on_failure: FailurePolicy = "continue",
    ) -> None:
        if not (stop_timeout >= 0 and cancel_timeout >= 0):  # also refuses NaN
            raise ValueError("stop_timeout and cancel_timeout must be numbers >= 0")
        if on_signal not in ("end", "cancel"):
            raise ValueError(f"on_signal must be 'end' or 'cancel', not {on_signal!r}")
        if on_failure not in ("continue", "end", "cancel"):
            raise ValueError(f"on_failure must be 'continue', 'end' or 'cancel', not {on_failure!r}")
        super().__init__(name=name or f"runner-{uuid.uuid4().hex[:8]}", task_manager=task_manager)
        if loop is not None:
            warnings.warn(
                "`loop` is deprecated since 1.5.0 and will be removed in 2.0.0. Use `task_manager` instead.",
                DeprecationWarning,
                stacklevel=2,
            )
        self._bus = bus if bus is not None else AsyncQueueBus()
        self._registry = WorkerRegistry(runner_name=self.name)
        self.handle_sigint = handle_sigint
        self.handle_sigterm = handle_sigterm
        self.force_gc = force_gc
        self.check_dangling_tasks = check_dangling_tasks
        self.stop_timeout = stop_timeout
        self.cancel_timeout = cancel_timeout
        self.on_signal = on_signal
        self.on_failure = on_failure
        self._loop = loop
        self._internal: set[asyncio.Task[Any]] = set()
        self._subscribed = False
        self._workers: dict[str, BaseWorker] = {}
        self._queued: list[BaseWorker] = []
        self._live_roots = 0
        self._phase: Literal["idle", "running", "stopping", "done"] = "idle"
        # ("end" | "cancel", reason): what was asked, possibly before run() started.
        self._request: tuple[str, str | None] | None = None
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._escalated: asyncio.Event | None = None
        #: Called on SIGHUP when this runner owns the signals (None: SIGHUP is left alone).
        self.on_sighup: Callable[[], Any] | None = None
        self._signals = self._signal_handlers()
        self._exchange: RegistryExchange | None = None
        self._never_ready_waiters: dict[str, list[asyncio.Future[None]]] = {}
        # Who waits for a worker to be healthy or to complete (depends_on conditions).
        self._waiters: dict[tuple[str, str], list[asyncio.Future[None]]] = {}
        self._completed_remote = RecentNames()
        # Names known to have been ready (here or on a peer), and local ones that have finished
        # since: a depends_on on a worker that already did its work and left is satisfied.
        self._ever_ready = RecentNames()
        self._finished_ready = RecentNames()
        self._outcomes = Outcomes()
        self._holds = 0
        self._params: WorkerParams | None = None
        #: True when the runner ended by cancelling (cancel(), second signal, or run() cancelled).
        self.cancelled = False
        #: Why the runner stopped (the end or cancel reason), once it has.
        self.stop_reason: str | None = None

    # -- properties ----------------------------------------------------------------------------

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

    @property
    def phase(self) -> str:
        """``idle``, ``running``, ``stopping`` or ``done``."""
        return self._phase

    def _signal_handlers(self) -> SignalHandlers:
        return SignalHandlers(
            f"runner {self.name}",
            sigint=self.handle_sigint,
            sigterm=self.handle_sigterm,
            first=self.on_signal,
            end=self.end,
            cancel=self.cancel,
            grace=self.stop_timeout,
            reload=self.on_sighup,
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
    def results(self) -> OrderedDict[str, WorkerResult]:
        """The latest outcomes, by worker name (a reused name keeps its latest; bounded)."""
        return self._outcomes.results

    @property
    def failed(self) -> list[WorkerResult]:
        """Recent results of the workers that failed (raised) or were abandoned."""
        return self._outcomes.failed

    def any_failed(self) -> bool:
        """Whether any worker failed or was abandoned during this run."""
        return self._outcomes.any_failed()

    def workers(self) -> list[BaseWorker]:
        """The workers of this runner that have not finished, in the order they were added."""
        return list(self._workers.values())

    def get_worker(self, name: str) -> BaseWorker | None:
        """A worker of this runner that has not finished yet, or None."""
        return self._workers.get(name)

    def _was_ready(self, name: str) -> bool:
        return name in self._registry or name in self._ever_ready

    async def wait_ready(self, name: str) -> None:
        """Wait until the worker ``name`` is ready (here or on a peer runner).

        Raises:
            RuntimeError: a local worker of that name finished without ever becoming ready.
        """
        if self._was_ready(name):
            return  # ready now, or was (a dependency that already did its work and finished)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def ready(data: WorkerReadyData) -> None:
            if not future.done():
                future.set_result(None)

        await self._registry.watch(name, ready)
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

    def _dependency_met(self, name: str, condition: str) -> bool:
        """Whether ``condition`` (ready, healthy, completed) holds for the worker ``name`` now."""
        if condition == "ready":
            return self._was_ready(name)
        worker = self._workers.get(name)
        if condition == "healthy":
            if worker is not None and getattr(worker, "healthcheck", None) is not None:
                return getattr(worker, "healthy", None) is True
            return self._was_ready(name)  # no health check, or on another runner: ready is healthy
        if worker is not None:
            return False
        result = self._outcomes.results.get(name)
        return (result is not None and result.outcome == "finished") or name in self._completed_remote

    async def wait_dependency(self, name: str, condition: str = "ready") -> None:
        """Wait until ``condition`` holds for the worker ``name`` (see ``depends_on``).

        Raises:
            RuntimeError: it cannot hold any more (the worker finished without being ready or
                healthy, or it failed instead of completing).
        """
        if self._dependency_met(name, condition):
            return
        worker = self._workers.get(name)
        if condition == "ready" or (condition == "healthy" and getattr(worker, "healthcheck", None) is None):
            await self.wait_ready(name)
            return
        if condition == "completed" and worker is None:
            result = self._outcomes.results.get(name)
            if result is not None:
                raise RuntimeError(f"{result.outcome}, so it did not complete")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        key = (condition, name)
        self._waiters.setdefault(key, []).append(future)
        try:
            await future
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None and future in waiters:
                waiters.remove(future)
                if not waiters:
                    del self._waiters[key]

    def _settle(self, condition: str, name: str, error: str | None = None) -> None:
        for future in self._waiters.pop((condition, name), []):
            if not future.done():
                future.set_result(None) if error is None else future.set_exception(RuntimeError(error))

    def _worker_healthy(self, worker: BaseWorker) -> None:
        """A worker's health check passed (CommandWorker calls this)."""
        self._settle("healthy", worker.name)

    def _remote_finished(self, name: str) -> None:
        """A peer says a worker of its own finished (a ``completed`` dependency across runners)."""
        self._completed_remote.add(name)
        self._settle("completed", name)

    def summary(self) -> dict[str, int]:
        """Counts of worker outcomes during this run: finished, failed, cancelled, abandoned."""
        return dict(self._outcomes.counts)

    # -- changing the workers of a running runner ---------------------------------------------

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Keep ``auto_end`` from ending the runner while workers are swapped (a reload): a
        runner whose last root worker is restarted does not end in between."""
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1
            self._signal_wake()

    async def stop_worker(self, name: str, reason: str | None = None, timeout: float | None = None) -> str | None:
        """End one root worker gracefully, cancel it after ``timeout`` seconds (default: the
        runner's ``stop_timeout``), and wait until it is gone (``cancel_timeout`` more at most).

        Returns its outcome (``finished``, ``cancelled``...), or None if no such worker runs.
        """
        worker = self._workers.get(name)
        if worker is None:
            return None
        grace = self.stop_timeout if timeout is None else timeout
        await self._bus.send(BusEndWorkerMessage(source=self.name, target=name, reason=reason))
        if not await _finished_within(worker, grace):
            await self._bus.send(BusCancelWorkerMessage(source=self.name, target=name, reason=reason))
            await _finished_within(worker, self.cancel_timeout)
        result = self._outcomes.results.get(name)
        return result.outcome if result is not None else worker._rc.state.value

    # -- events --------------------------------------------------------------------------------

    def _emit(self, event_name: str, *args: Any) -> None:
        # The handlers run in tasks of their own: a slow or failing one never blocks the runner.
        self._fire(event_name, *args)

    def _spawn(self, coroutine: Any, what: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=f"{self.name}:{what}")
        self._internal.add(task)
        task.add_done_callback(self._internal.discard)

    # -- adding workers ------------------------------------------------------------------------

    async def _subscribe(self) -> None:
        if not self._subscribed:
            self._subscribed = True
            await self._bus.subscribe(self, groups=(RUNNERS,))

    async def add_workers(self, *workers: BaseWorker) -> None:
        """Attach workers to this runner's bus and registry, and start them.

        Before :meth:`run` they are queued and started, in order, when it starts; while running,
        each starts at once. A name already in use (or the runner's own) is skipped with an error
        logged. Children a worker adopted before being added come along after it.
        """
        await self._subscribe()
        started = False
        for worker in workers:
            name = worker.name
            rc = worker._rc
            if name in self._workers or name == self.name:
                logger.error("runner %s: a worker named %r already exists; skipping it", self.name, name)
                continue
            if rc.runner is not None:
                logger.error("runner %s: worker %r belongs to a runner already; skipping it", self.name, name)
                continue
            if self._phase in ("stopping", "done"):
                logger.warning("runner %s is stopping; worker %r was not started", self.name, name)
                continue
            if rc.parent is not None and rc.parent not in self._workers:
                logger.warning("runner %s: worker %r: its parent %r is not running; skipping it", self.name, name, rc.parent)
                continue
            await worker.attach(registry=self._registry, bus=self._bus, worker_runner=self)
            self._workers[name] = worker
            if rc.parent is None:
                self._live_roots += 1
            if self._idle is not None:
                self._idle.clear()
            if self._phase == "running":
                self._start(worker)
                started = True
            else:
                self._queued.append(worker)
            if rc.pending_children:
                children, rc.pending_children = rc.pending_children, None
                await self.add_workers(*children)
        if started:
            # One loop turn: a worker whose on_start does not suspend is ready when this returns.
            await asyncio.sleep(0)

    def _start(self, worker: BaseWorker) -> None:
        worker._rc.task = asyncio.get_running_loop().create_task(self._run_worker(worker), name=f"worker:{worker.name}")

    async def _run_worker(self, worker: BaseWorker) -> None:
        logger.info("worker %s started", worker.name, extra={"event": "worker_started", "worker": worker.name, "runner": self.name})
        try:
            params = self._params
            if params is None or params.task_manager is not self.task_manager:
                params = self._params = WorkerParams(task_manager=self.task_manager)
            await worker.run(params)
        except asyncio.CancelledError:
            # Cancelled by the teardown backstop; the task ends normally so nothing re-raises it.
            worker._rc.state = WorkerState.CANCELLED
        except Exception as exc:  # a run() of the user's own that raised
            worker._fail(exc, "run")
        finally:
            self._worker_done(worker)

    async def _worker_ready(self, worker: BaseWorker) -> None:
        rc = worker._rc
        entry = WorkerRegistryEntry(
            name=rc.name, parent=rc.parent, active=rc.active, bridged=worker.bridged, started_at=rc.started_at
        )
        self._ever_ready.add(rc.name)
        await self._registry.register(WorkerReadyData(worker_name=rc.name, runner=self.name), entry=entry)
        if self._exchange is not None:
            self._exchange.added(entry)

    def _worker_done(self, worker: BaseWorker, outcome: str | None = None) -> None:
        rc = worker._rc
        worker._finished()
        name = rc.name
        if self._workers.get(name) is not worker:
            return
        del self._workers[name]
        registry = self._registry
        if registry.unregister(name) is not None:
            self._finished_ready.add(name)
            if self._exchange is not None:
                self._exchange.removed(name)
        self._bus.remove_subscriber(name)
        if rc.watching:
            for watched in rc.watching:
                registry.unwatch(watched, worker._on_watched_worker_ready)
        if rc.parent is not None:
            parent = self._workers.get(rc.parent)
            if parent is not None:
                # The child is gone: its parent forgets it (bounded, for long-lived parents).
                prc = parent._rc
                if worker in prc.children:
                    prc.children.remove(worker)
                if prc.watching and name in prc.watching:
                    prc.watching.discard(name)
                    registry.unwatch(name, parent._on_watched_worker_ready)
        if outcome is not None and outcome != "abandoned":
            rc.state = WorkerState(outcome)
        elif not rc.state.final and outcome is None:
            rc.state = WorkerState.CANCELLED if rc.cancel_reason else WorkerState.FINISHED
        outcome = outcome or rc.state.value
        if not rc.ready:
            # Whoever waits for it (depends_on) would wait forever: tell them.
            for future in self._never_ready_waiters.pop(name, []):
                if not future.done():
                    future.set_exception(RuntimeError(f"{outcome} without becoming ready"))
        if self._waiters:  # someone waits for a worker to be healthy or completed
            self._settle("healthy", name, f"{outcome} without becoming healthy")
            self._settle("completed", name, None if outcome == "finished" else f"{outcome}, so it did not complete")
        duration = worker.duration or 0.0
        root = rc.parent is None
        self._outcomes.record(result_of(name, outcome, duration, root, rc.error, getattr(worker, "returncode", None)))
        if root:
            self._live_roots -= 1
        self._log_outcome(worker, outcome, duration)
        if outcome == "failed":
            self._emit("on_error", worker, rc.error)
            self._apply_failure_policy(worker)
        if not self._workers and self._idle is not None:
            self._idle.set()
        if self._wake is not None:
            self._wake.set()

    def _log_outcome(self, worker: BaseWorker, outcome: str, duration: float) -> None:
        rc = worker._rc
        if outcome in ("finished", "cancelled") and not logger.isEnabledFor(logging.INFO):
            return  # nothing would be written: skip building the line
        extra: dict[str, Any] = {
            "event": "worker_stopped",
            "worker": rc.name,
            "runner": self.name,
            "outcome": outcome,
            "duration": round(duration, 6),
        }
        if outcome == "failed":
            logger.error(
                "worker %s failed after %.3fs: %r",
                rc.name,
                duration,
                rc.error,
                exc_info=rc.error if getattr(rc.error, "log_traceback", True) else None,
                extra=extra,
            )
            return
        reason = rc.cancel_reason or rc.end_reason
        extra["reason"] = reason
        logger.log(
            logging.WARNING if outcome == "abandoned" else logging.INFO,
            "worker %s %s after %.3fs%s",
            rc.name,
            outcome,
            duration,
            f" ({reason})" if reason else "",
            extra=extra,
        )

    def _apply_failure_policy(self, worker: BaseWorker) -> None:
        if self._phase != "running" or self._request is not None:
            return
        if not worker.required and self.on_failure == "continue":
            return
        reason = f"{'required ' if worker.required else ''}worker {worker.name!r} failed"
        if self.on_failure == "cancel":
            logger.error("runner %s: %s; cancelling the runner (on_failure: cancel)", self.name, reason)
            self._spawn(self.cancel(reason), "on_failure")
        else:
            why = "required: true" if worker.required else "on_failure: end"
            logger.error("runner %s: %s; ending the runner (%s)", self.name, reason, why)
            self._spawn(self.end(reason), "on_failure")

    # -- stopping ------------------------------------------------------------------------------

    async def end(self, reason: str | None = None) -> None:
        """Gracefully end the runner: root workers are asked to finish (children by their parent).

        Idempotent: a later end() is ignored. Called before :meth:`run`, it is kept and applied as
        soon as run() has started the workers.
        """
        if self._request is not None or self._phase == "done":
            return
        self._request = ("end", reason)
        self.stop_reason = reason
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
        self.stop_reason = reason
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
        roots = [w for w in self._workers.values() if w.parent is None]
        with _collector_paused(len(roots)):
            for worker in roots:
                if kind is BusEndWorkerMessage and worker._end_directly(self._bus, reason):
                    continue
                await self._bus.send(kind(source=self.name, target=worker.name, reason=reason))
            if len(roots) >= _MANY:
                await asyncio.sleep(0)  # the idle ones finish in this turn

    def _signal_wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # -- bus -----------------------------------------------------------------------------------

    async def on_bus_message(self, message: BusMessage) -> None:
        """React to runner-level messages from others: end, cancel, add-worker, registries."""
        if message.source == self.name:
            return
        if isinstance(message, BusEndMessage):
            logger.info("runner %s: end asked by %s (%s)", self.name, message.source, message.reason)
            self._spawn(self.end(message.reason), "end")
        elif isinstance(message, BusCancelMessage):
            logger.info("runner %s: cancel asked by %s (%s)", self.name, message.source, message.reason)
            self._spawn(self.cancel(message.reason), "cancel")
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
                "`WorkerRunner.run(worker)` is deprecated since 1.3.0 and will be removed in 2.0.0. "
                "Use `WorkerRunner.add_workers()` before `run()` instead.",
                DeprecationWarning,
                stacklevel=2,
            )
            await self.add_workers(worker)
        if self._phase != "idle":
            raise RuntimeError(f"runner {self.name} has already run (phase {self._phase})")
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            raise RuntimeError(f"runner {self.name} was bound to another event loop")
        if self._rc.task_manager is None:
            await self.setup(TaskManager(loop=loop))
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
            await self._bus.setup(self.task_manager)
            await self._subscribe()
            # Runners sharing a bus (in this process or over the network) keep each other's
            # registries; a lone runner pays one announcement that nobody answers.
            self._exchange = RegistryExchange(self)
            await self._bus.start()
            self._signals = self._signal_handlers()  # with the options as they are now
            self._signals.install(loop)
            await self._exchange.start()
            queued, self._queued = self._queued, []
            with _collector_paused(len(queued)):
                for w in queued:
                    self._start(w)
                await asyncio.sleep(0)  # every worker takes its first step
            self._emit("on_ready")
            if self._request is not None:
                # end() / cancel() came before run(): apply it now that the workers exist.
                kind, reason = self._request
                self._phase = "stopping"
                msg = BusEndWorkerMessage if kind == "end" else BusCancelWorkerMessage
                await self._send_to_roots(msg, reason)
            while self._request is None and not (auto_end and self._live_roots == 0 and not self._holds):
                self._wake.clear()
                await self._wake.wait()
        except asyncio.CancelledError:
            cancelled_from_outside = True
            self.cancelled = True
            self._request = ("cancel", "run() was cancelled")
            self.stop_reason = "run() was cancelled"
            self._escalated.set()
        finally:
            self._phase = "stopping"
            if self.stop_reason is None and self._request is None:
                self.stop_reason = "all root workers finished"
            try:
                await tear_down(self, cancelled_from_outside)
            finally:
                self._phase = "done"
                await self._cleanup(owns_bus, loop)
        if cancelled_from_outside:
            raise asyncio.CancelledError()

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
        self._bus.remove_subscriber(self)
        self._subscribed = False
        if owns_bus:
            await self._bus.stop()
        await self._signals.wait(self.cancel_timeout)
        current = asyncio.current_task()
        pending = {t for t in (*self._internal, *(self._rc.event_tasks or ())) if t is not current}
        if pending:
            _, still = await asyncio.wait(pending, timeout=self.cancel_timeout)
            for t in still:
                t.cancel()
        if self.force_gc:
            collected = await asyncio.to_thread(gc.collect)
            logger.debug("runner %s: gc collected %d objects", self.name, collected)
        if self.check_dangling_tasks:
            dangling = [t.get_name() for t in self.task_manager.current_tasks() if t is not current]
            if dangling:
                logger.warning("runner %s: dangling tasks detected: %s", self.name, dangling)
        counts = self.summary()
        logger.info(
            "runner %s done: %s",
            self.name,
            ", ".join(f"{n} {k}" for k, n in counts.items() if n or k != "abandoned"),
            extra={"event": "runner_done", "runner": self.name, "reason": self.stop_reason, **counts},
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self._phase} workers={len(self._workers)}>"


async def _finished_within(worker: BaseWorker, timeout: float) -> bool:
    """Whether ``worker`` finishes within ``timeout`` seconds (it is not cancelled if not)."""
    try:
        await asyncio.wait_for(asyncio.shield(worker.wait()), timeout)
    except TimeoutError:
        return False
    return True


#: From this many workers on, starting or ending them pauses the cyclic garbage collector.
_MANY = 1000


@contextlib.contextmanager
def _collector_paused(count: int) -> Iterator[None]:
    """Pause the cyclic garbage collector while ``count`` (>= :data:`_MANY`) workers start or end.

    Starting many workers makes objects that all live on, and ending them frees them by reference
    counting: the collector's passes meanwhile scan them all for nothing (most of the start and
    end of 100,000 workers). The pause spans the synchronous loop and one loop turn (no await of
    user code runs past it), and the collector is put back as it was.
    """
    paused = count >= _MANY and gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
