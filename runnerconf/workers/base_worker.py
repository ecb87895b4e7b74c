"""``BaseWorker``: the unit a runner starts, ends and cancels (pipecat's worker API).

Two ways to write a worker, freely mixed:

* runnerconf's hooks: :meth:`~BaseWorker.main` (the body), :meth:`~BaseWorker.on_start`,
  :meth:`~BaseWorker.on_end`, :meth:`~BaseWorker.on_cancel`, and
  :meth:`~BaseWorker.on_bus_message` for what others send it;
* pipecat's API: ``on_activated`` / ``on_deactivated``, ``on_worker_ready``, ``@job`` handlers and
  the ``on_job_*`` hooks, ``add_workers`` for children, ``activate_worker``, ``request_job`` ...

Everything a worker keeps for itself lives in ``self._rc``, so subclasses may use any other
attribute name.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

from runnerconf.bus.messages import (
    BusActivateWorkerMessage,
    BusAddWorkerMessage,
    BusCancelMessage,
    BusCancelWorkerMessage,
    BusDataMessage,
    BusDeactivateWorkerMessage,
    BusEndMessage,
    BusEndWorkerMessage,
    BusFrameMessage,
    BusMessage,
    BusWorkerErrorMessage,
    BusWorkerLocalErrorMessage,
    BusWorkerReadyMessage,
    BusWorkerRegistryMessage,
)
from runnerconf.bus.subscriber import BusSubscriber
from runnerconf.registry.types import WorkerErrorData, WorkerReadyData
from runnerconf.utils.asyncio.task_manager import BaseTaskManager
from runnerconf.utils.base_object import BaseObject, ObjectCore
from runnerconf.workers.decorators import ready_handlers_of
from runnerconf.workers.jobs import JOB_MESSAGES, JobsMixin

if TYPE_CHECKING:
    from runnerconf.bus.bus import WorkerBus
    from runnerconf.registry import WorkerRegistry
    from runnerconf.workers.jobs import _JobState
    from runnerconf.workers.runner import WorkerRunner

__all__ = ["DEPENDENCY_CONDITIONS", "BaseWorker", "DependencyError", "WorkerActivationArgs", "WorkerParams", "WorkerState"]

#: What a worker can wait for of a worker in its ``depends_on``.
DEPENDENCY_CONDITIONS = ("ready", "healthy", "completed")

logger = logging.getLogger(__name__)

#: Runner-level traffic: never a worker's business.
_RUNNER_MESSAGES = (BusEndMessage, BusCancelMessage, BusWorkerRegistryMessage, BusAddWorkerMessage, BusWorkerReadyMessage)
#: What an inactive worker is still handed (pipecat): what changes its activity, or stops it.
_ALWAYS_DELIVERED = (BusActivateWorkerMessage, BusDeactivateWorkerMessage, BusEndWorkerMessage, BusCancelWorkerMessage)


class WorkerState(str, enum.Enum):
    """Where a worker is in its life. The last three are final."""

    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in _FINAL_STATES


_FINAL_STATES = (WorkerState.FINISHED, WorkerState.FAILED, WorkerState.CANCELLED)


@dataclass
class WorkerParams:
    """What a runner hands a worker's :meth:`BaseWorker.run` (one per runner, shared)."""

    task_manager: BaseTaskManager


@dataclass
class WorkerActivationArgs:
    """Arguments of an activation (subclass it for your own fields)."""

    metadata: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build from a dict, ignoring keys that are not fields."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        """The fields that are not None."""
        return {k: v for k in self.__dataclass_fields__ if (v := getattr(self, k)) is not None}


class _WorkerCore(ObjectCore):
    """A worker's private state (see :class:`~runnerconf.utils.base_object.BaseObject`)."""

    __slots__ = (
        "runner", "bus", "registry", "parent", "children", "pending_children", "depends_on", "conditions",
        "ready", "state", "stop_event", "end_reason", "cancel_reason", "task", "end_task",
        "cancel_called", "in_main", "own_cancel", "entered", "required", "t_start", "t_end", "started_at", "error",
        "active", "pending_activation", "activation_args", "check_dangling", "owns_tm",
        "watching", "jobs", "done",
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.runner: WorkerRunner | None = None
        self.bus: WorkerBus | None = None
        self.registry: WorkerRegistry | None = None
        self.parent: str | None = None
        self.children: list[BaseWorker] = []
        self.pending_children: list[BaseWorker] | None = None
        self.depends_on: list[str] = []
        self.conditions: dict[str, str] | None = None
        self.ready = False
        self.state = WorkerState.CREATED
        self.stop_event: _StopFlag | None = None
        self.end_reason: str | None = None
        self.cancel_reason: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.end_task: asyncio.Task[None] | None = None
        self.cancel_called = False
        self.entered = False
        self.required = False
        self.in_main = False
        self.own_cancel = False
        self.t_start: float | None = None
        self.t_end: float | None = None
        self.started_at: float | None = None
        self.error: BaseException | None = None
        self.active = True
        self.pending_activation = True
        self.activation_args: dict[str, Any] | None = None
        self.check_dangling = True
        self.owns_tm = False
        self.watching: set[str] | None = None
        self.jobs: _JobState | None = None
        self.done: asyncio.Future[None] | None = None


class _StopFlag:
    """Set once a stop is asked: what ``asyncio.Event`` does for this one use, in a fraction of
    its memory and without a coroutine per wait (a worker holds one for its whole life, and an
    Event carries a deque of waiters)."""

    __slots__ = ("flag", "waiters")

    def __init__(self) -> None:
        self.flag = False
        # None, one future, or a list of them (rarely more than one waits).
        self.waiters: asyncio.Future[None] | list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self.flag

    def set(self) -> None:
        if self.flag:
            return
        self.flag = True
        waiters, self.waiters = self.waiters, None
        for future in (waiters,) if isinstance(waiters, asyncio.Future) else (waiters or ()):
            if not future.done():
                future.set_result(None)

    def wait(self) -> asyncio.Future[None]:
        """A future done once the flag is set (cancelling it cancels that wait only)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.flag:
            future.set_result(None)
            return future
        waiters = self.waiters
        if waiters is None or (isinstance(waiters, asyncio.Future) and waiters.done()):
            self.waiters = future
        elif isinstance(waiters, asyncio.Future):
            self.waiters = [waiters, future]
        else:
            # Drop the waits given up (a wait_for that timed out): the list stays as short as
            # the number of live waits.
            waiters[:] = [w for w in waiters if not w.done()]
            waiters.append(future)
        return future


class _Inbox:
    """The worker's bus subscriber: lifecycle first, then :meth:`BaseWorker.on_bus_message`."""

    __slots__ = ("name", "on_bus_message", "worker")

    def __init__(self, worker: BaseWorker) -> None:
        self.name = worker.name
        self.on_bus_message = worker._receive
        self.worker = worker


class BaseWorker(JobsMixin, BaseObject, BusSubscriber):
    """Base class of every worker.

    Write a worker by overriding the hooks you need:

    * :meth:`main` -- the body; when it returns the worker has finished (``auto_end`` waits for
      that). The default body waits until the worker is asked to stop (or calls :meth:`stop`).
    * :meth:`on_start` -- once, before :meth:`main`.
    * :meth:`on_end` -- a graceful stop was asked: wrap up so that :meth:`main` returns; it runs
      beside ``main`` (the runner's ``stop_timeout`` bounds both).
    * :meth:`on_cancel` -- the worker is cancelled (once, whether the cancel came first or cut a
      graceful stop short); :meth:`main` is cancelled right after.
    * :meth:`on_bus_message` -- the messages others send it: data (:class:`BusDataMessage` and
      your own message classes), activations and jobs. Subclasses that extend it call
      ``await super().on_bus_message(message)``, which dispatches activations and jobs to their
      hooks; lifecycle traffic (end, cancel, readiness, registries) never reaches it.
    * pipecat's hooks: :meth:`on_activated`, :meth:`on_deactivated`, :meth:`on_worker_ready`,
      :meth:`on_worker_failed`, the ``on_job_*`` hooks and ``@job`` / ``@worker_ready`` methods.

    A worker's lifetime encloses its children's: when :meth:`main` returns, children still running
    are ended, and the worker finishes once they have.

    A worker is *ready* (registered in the registry, so others can watch it) once :meth:`on_start`
    has returned -- or, for a subclass that sets ``ready_on_start = False``, when it calls
    :meth:`mark_ready` itself (a supervised process that prints "listening on ...").

    Events (``@worker.event_handler(name)``): ``on_activated``, ``on_deactivated``,
    ``on_bus_message``, ``on_worker_ready``, ``on_worker_failed`` and one per job hook.

    Args:
        name: Unique name in the topology. Default: ``ClassName#N``.
        active: An inactive worker is handed only activations, deactivations, ends and cancels.
        check_dangling_tasks: Warn about tasks left on its own task manager when it finishes.
        task_manager: A task manager of its own (default: the runner's).
        depends_on: Names of workers (on this runner or, over a network bus, on another) that must
            be ready before this one starts.
    """

    _core_type = _WorkerCore
    _event_names = (
        "on_activated", "on_deactivated", "on_bus_message", "on_job_request", "on_job_response",
        "on_job_update", "on_job_update_requested", "on_job_completed", "on_job_error",
        "on_job_stream_start", "on_job_stream_data", "on_job_stream_end", "on_job_cancelled",
        "on_worker_ready", "on_worker_failed",
    )  # fmt: skip
    #: Register as ready as soon as on_start() returns (False: call mark_ready() yourself).
    ready_on_start: ClassVar[bool] = True

    _rc: _WorkerCore

    def __init__(
        self,
        name: str | None = None,
        *,
        active: bool = True,
        check_dangling_tasks: bool = True,
        task_manager: BaseTaskManager | None = None,
        depends_on: Sequence[str | tuple[str, str]] = (),
    ) -> None:
        super().__init__(name=name, task_manager=task_manager)
        rc = self._rc
        rc.active = rc.pending_activation = active
        rc.check_dangling = check_dangling_tasks
        rc.owns_tm = task_manager is not None
        if depends_on:
            self.depends_on = depends_on  # type: ignore[assignment]

    # -- identity and wiring -------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The worker's name, unique across the topology."""
        return self._rc.name

    @name.setter
    def name(self, value: str) -> None:
        if self._rc.runner is not None:
            raise RuntimeError(f"cannot rename worker {self._rc.name!r}: it is attached to a runner")
        self._rc.name = value

    @property
    def parent(self) -> str | None:
        """Name of the parent worker, or None for a root."""
        return self._rc.parent

    @property
    def children(self) -> list[BaseWorker]:
        """The children added with :meth:`add_workers` that have not finished."""
        return list(self._rc.children)

    @property
    def worker_runner(self) -> WorkerRunner:
        """The runner this worker was added to (RuntimeError before that)."""
        runner = self._rc.runner
        if runner is None:
            raise RuntimeError(f"Worker '{self}': runner is not set; add it to a runner first")
        return runner

    @property
    def bus(self) -> WorkerBus:
        """The runner's bus (RuntimeError before the worker is added to a runner)."""
        bus = self._rc.bus
        if bus is None:
            raise RuntimeError(f"Worker '{self}': bus is not set; add it to a runner first")
        return bus

    @property
    def registry(self) -> WorkerRegistry:
        """The runner's registry (RuntimeError before the worker is added to a runner)."""
        registry = self._rc.registry
        if registry is None:
            raise RuntimeError(f"Worker '{self}': registry is not set; add it to a runner first")
        return registry

    @property
    def active(self) -> bool:
        """Whether the worker takes work (an inactive one only takes activation and stops)."""
        return self._rc.active

    @active.setter
    def active(self, value: bool) -> None:
        # Before start, the same as the constructor's ``active``; later, a local (de)activation
        # without the hooks (use activate_worker() / deactivate_worker() for those).
        rc = self._rc
        rc.active = value
        if rc.started_at is None:
            rc.pending_activation = value

    @property
    def activation_args(self) -> dict[str, Any] | None:
        """The arguments of the latest activation (None when inactive)."""
        return self._rc.activation_args

    @property
    def started_at(self) -> float | None:
        """Unix time the worker started (None before)."""
        return self._rc.started_at

    @property
    def bridged(self) -> bool:
        """Whether the worker is bridged onto the bus (pipecat pipelines); False here."""
        return False

    @property
    def depends_on(self) -> list[str]:
        """Workers this one waits for before it starts (see :meth:`dependency_condition`)."""
        return self._rc.depends_on

    @depends_on.setter
    def depends_on(self, dependencies: Sequence[str | tuple[str, str]]) -> None:
        # A name waits until that worker is ready; (name, condition) waits until it is "ready",
        # "healthy" (its health check passed) or "completed" (it finished successfully).
        names: list[str] = []
        conditions: dict[str, str] = {}
        for dep in dependencies:
            name, condition = (dep, "ready") if isinstance(dep, str) else dep
            if condition not in DEPENDENCY_CONDITIONS:
                raise ValueError(f"condition must be one of {', '.join(DEPENDENCY_CONDITIONS)}, not {condition!r}")
            names.append(name)
            if condition != "ready":
                conditions[name] = condition
        self._rc.depends_on = names
        self._rc.conditions = conditions or None

    def dependency_condition(self, name: str) -> str:
        """What this worker waits for of ``name``: ``ready``, ``healthy`` or ``completed``."""
        conditions = self._rc.conditions
        return conditions.get(name, "ready") if conditions else "ready"

    @property
    def state(self) -> WorkerState:
        """Where the worker is in its life."""
        return self._rc.state

    @property
    def error(self) -> BaseException | None:
        """The exception that made the worker fail, if it did."""
        return self._rc.error

    @property
    def stop_requested(self) -> bool:
        """True once an end or a cancel was asked (or :meth:`stop` called)."""
        event = self._rc.stop_event
        return event is not None and event.is_set()

    @property
    def end_reason(self) -> str | None:
        """Why a graceful stop was asked, if it was."""
        return self._rc.end_reason

    @property
    def cancel_reason(self) -> str | None:
        """Why the worker was cancelled, if it was."""
        return self._rc.cancel_reason

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish (or to now, while running); None before start."""
        rc = self._rc
        if rc.t_start is None:
            return None
        end = rc.t_end if rc.t_end is not None else time.monotonic()
        return end - rc.t_start

    @property
    def check_dangling_tasks(self) -> bool:
        """Whether the worker warns about tasks left on its own task manager when it finishes."""
        return self._rc.check_dangling

    @check_dangling_tasks.setter
    def check_dangling_tasks(self, value: bool) -> None:
        self._rc.check_dangling = value

    @property
    def required(self) -> bool:
        """A required worker that fails ends the runner (see ``WorkerRunner(on_failure=...)``)."""
        return self._rc.required

    @required.setter
    def required(self, value: bool) -> None:
        self._rc.required = value

    @property
    def ready(self) -> bool:
        """True once the worker is registered as ready."""
        return self._rc.ready

    async def attach(self, *, registry: WorkerRegistry, bus: WorkerBus, worker_runner: WorkerRunner) -> None:
        """Attach to a runner's registry and bus, and subscribe (the runner calls this)."""
        rc = self._rc
        rc.registry, rc.bus, rc.runner = registry, bus, worker_runner
        await bus.subscribe(_Inbox(self))
        if rc.watching:
            for name in list(rc.watching):
                await registry.watch(name, self._on_watched_worker_ready)

    # -- hooks ---------------------------------------------------------------------------------

    async def main(self) -> None:
        """The worker's body. Default: wait until asked to stop."""
        await self._stop_event().wait()

    async def on_start(self) -> None:
        """Called once when the runner starts the worker, before :meth:`main`."""

    async def on_end(self, reason: str | None) -> None:
        """A graceful stop was asked: wrap up so that :meth:`main` returns."""

    async def on_cancel(self, reason: str | None) -> None:
        """The worker is being cancelled; :meth:`main` is cancelled right after."""

    async def on_activated(self, args: dict[str, Any] | None) -> None:
        """The worker became active (also at start, for a worker created active)."""

    async def on_deactivated(self) -> None:
        """The worker became inactive."""

    async def on_worker_ready(self, data: WorkerReadyData) -> None:
        """A worker this one watches is ready (children are watched by default)."""

    async def on_worker_failed(self, data: WorkerErrorData) -> None:
        """A child reported an error with :meth:`send_bus_error_message`."""

    async def stop_when_done(self) -> None:
        """Finish the work already queued, then end. The base worker has no queue: a no-op."""

    def accepts_bus_message(self, message: BusMessage) -> bool:
        """Whether the bus may hand ``message`` to this worker: all while active, else only
        activations, deactivations, ends and cancels."""
        return self._rc.active or isinstance(message, _ALWAYS_DELIVERED)

    async def on_bus_message(self, message: BusMessage) -> None:
        """Dispatch activations, jobs and child errors to their hooks, then fire ``on_bus_message``.

        Override to handle your own messages; call ``await super().on_bus_message(message)``
        to keep activations and jobs working.
        """
        if type(message) is not BusDataMessage:
            if isinstance(message, BusFrameMessage):
                return
            if isinstance(message, JOB_MESSAGES):
                await self._dispatch_job_message(message)
            elif isinstance(message, BusActivateWorkerMessage):
                rc = self._rc
                rc.activation_args = message.args
                rc.pending_activation = True
                await self._maybe_activate()
            elif isinstance(message, BusDeactivateWorkerMessage):
                await self._deactivate()
            elif isinstance(message, (BusWorkerErrorMessage, BusWorkerLocalErrorMessage)):
                if any(child.name == message.source for child in self._rc.children):
                    data = WorkerErrorData(worker_name=message.source, error=message.error)
                    await self.on_worker_failed(data)
                    await self._call_event_handler("on_worker_failed", data)
        await self._call_event_handler("on_bus_message", message)

    # -- actions -------------------------------------------------------------------------------

    async def send_bus_message(self, message: BusMessage) -> None:
        """Send any message on the bus (no-op before the worker is attached)."""
        bus = self._rc.bus
        if bus is not None:
            await bus.send(message)

    async def send(self, target: str, payload: Any) -> None:
        """Send ``payload`` in a :class:`BusDataMessage` to the worker named ``target``."""
        await self.bus.send(BusDataMessage(source=self._rc.name, target=target, payload=payload))

    async def broadcast(self, payload: Any) -> None:
        """Send ``payload`` to every subscriber of the bus."""
        await self.bus.send(BusDataMessage(source=self._rc.name, payload=payload))

    async def send_bus_error_message(self, error: str) -> None:
        """Report an error: a child tells its parent (``on_worker_failed``), a root tells the network."""
        rc = self._rc
        if rc.parent is not None:
            await self.send_bus_message(BusWorkerLocalErrorMessage(source=rc.name, target=rc.parent, error=error))
        else:
            await self.send_bus_message(BusWorkerErrorMessage(source=rc.name, error=error))

    async def end(self, *, reason: str | None = None) -> None:
        """Ask the runners to end gracefully (every runner of the session, as in pipecat)."""
        await self.send_bus_message(BusEndMessage(source=self._rc.name, reason=reason))

    async def cancel(self, *, reason: str | None = None) -> None:
        """Ask the runners to cancel every worker (every runner of the session, as in pipecat)."""
        await self.send_bus_message(BusCancelMessage(source=self._rc.name, reason=reason))

    async def add_workers(self, *workers: BaseWorker, watch: bool = True) -> None:
        """Make ``workers`` children of this one; the runner starts them and this one ends them.

        A worker that already has a parent is skipped with a warning. Each child is announced to
        the runner with a :class:`BusAddWorkerMessage` (added along with this worker if it is not
        attached yet) and, with ``watch``, watched: :meth:`on_worker_ready` fires once it is ready.
        """
        rc = self._rc
        added = []
        for worker in workers:
            if worker is self:
                raise ValueError(f"worker {rc.name!r} cannot be its own child")
            if worker._rc.parent is not None:
                logger.warning("worker %r already has parent %r, skipping", worker.name, worker._rc.parent)
                continue
            if worker._rc.runner is not None:
                logger.warning("worker %r already runs as a root, skipping", worker.name)
                continue
            worker._rc.parent = rc.name
            rc.children.append(worker)
            added.append(worker.name)
            if rc.runner is None:
                if rc.pending_children is None:
                    rc.pending_children = []
                rc.pending_children.append(worker)
            else:
                await self.send_bus_message(BusAddWorkerMessage(source=rc.name, target=rc.runner.name, worker=worker))
        if watch and added:
            await self.watch_workers(*added)

    async def watch_workers(self, *worker_names: str) -> None:
        """Have :meth:`on_worker_ready` called when each of ``worker_names`` is ready (at once if it is)."""
        rc = self._rc
        if rc.watching is None:
            rc.watching = set()
        for name in worker_names:
            rc.watching.add(name)
            if rc.registry is not None:
                await rc.registry.watch(name, self._on_watched_worker_ready)

    async def activate_worker(
        self, worker_name: str, *, args: WorkerActivationArgs | None = None, deactivate_self: bool = False
    ) -> None:
        """Activate ``worker_name`` (its ``on_activated`` gets ``args``); with ``deactivate_self``,
        this worker is inactive first, so the two are never active at once (a hand-over)."""
        rc = self._rc
        if rc.active and deactivate_self:
            rc.active = False  # at once, not after the bus round trip
            await self.deactivate_worker(rc.name)
        await self.send_bus_message(
            BusActivateWorkerMessage(source=rc.name, target=worker_name, args=args.to_dict() if args else None)
        )

    async def deactivate_worker(self, worker_name: str) -> None:
        """Deactivate ``worker_name`` (its ``on_deactivated`` is called)."""
        await self.send_bus_message(BusDeactivateWorkerMessage(source=self._rc.name, target=worker_name))

    async def mark_ready(self) -> None:
        """Register this worker as ready (idempotent). Called for you unless ``ready_on_start`` is False."""
        rc = self._rc
        if rc.ready or rc.runner is None or rc.state.final:
            return
        rc.ready = True
        await rc.runner._worker_ready(self)

    async def wait_for_stop(self) -> None:
        """Return once an end or a cancel was asked (or :meth:`stop` called)."""
        await self._stop_event().wait()

    async def wait(self) -> None:
        """Wait until the worker has finished."""
        rc = self._rc
        if rc.state.final and (rc.task is None or rc.task.done()):
            return
        if rc.done is None:
            rc.done = asyncio.get_running_loop().create_future()
        await asyncio.shield(rc.done)

    async def start(self) -> None:
        """Stamp the start, register as ready (unless ``ready_on_start`` is False), apply a pending
        activation and watch the ``@worker_ready`` names (the lifecycle calls this)."""
        self._rc.started_at = time.time()
        if self.ready_on_start:
            await self.mark_ready()
        await self._maybe_activate()
        handlers = ready_handlers_of(type(self))
        if handlers:
            await self.watch_workers(*handlers)

    async def stop(self) -> None:
        """Finish: cancel the job groups this worker requested, answer its active jobs CANCELLED,
        cancel its job handlers, and let :meth:`main`'s default body return. Idempotent."""
        if self._rc.jobs is not None:
            await self._stop_jobs()
        self._stop_event().set()

    async def cleanup(self) -> None:
        """Wait for event handlers still running, then :meth:`stop`."""
        await super().cleanup()
        await self.stop()

    # -- older names of runnerconf, kept as aliases ---------------------------------------------

    @property
    def runner(self) -> WorkerRunner:
        """Older name of :attr:`worker_runner`."""
        return self.worker_runner

    async def add_child(self, worker: BaseWorker) -> None:
        """Older name of :meth:`add_workers` for one worker."""
        await self.add_workers(worker)

    async def end_runner(self, reason: str | None = None) -> None:
        """Older name of :meth:`end`."""
        await self.end(reason=reason)

    async def cancel_runner(self, reason: str | None = None) -> None:
        """Older name of :meth:`cancel`."""
        await self.cancel(reason=reason)

    # -- lifecycle (driven by the runner) ------------------------------------------------------

    async def run(self, params: WorkerParams) -> None:
        """Run the whole life: dependencies, :meth:`on_start`, :meth:`start`, :meth:`main`,
        children, :meth:`stop`. The runner calls this in the worker's own task."""
        rc = self._rc
        await self.setup(rc.task_manager if rc.owns_tm and rc.task_manager is not None else params.task_manager)
        try:
            await self._live()
            if rc.children:
                await self._settle_children()
        finally:
            await self.stop()
            if rc.check_dangling and rc.owns_tm:
                names = [t.get_name() for t in self.task_manager.current_tasks() if t is not asyncio.current_task()]
                if names:
                    logger.warning("worker %s: dangling tasks detected: %s", rc.name, names)

    async def _live(self) -> None:
        rc = self._rc
        rc.state = WorkerState.STARTING
        if rc.depends_on and not await self._wait_for_dependencies():
            return
        rc.t_start = time.monotonic()
        if rc.cancel_reason is not None:
            rc.state = WorkerState.CANCELLED
            return
        where = "on_start"
        rc.entered = True  # on_start is called: a cancel from here on calls on_cancel
        rc.in_main = True  # and cancels this task (see _begin_cancel)
        try:
            await self.on_start()
            where = "start"
            await self.start()
            if rc.state is WorkerState.STARTING:
                rc.state = WorkerState.STOPPING if rc.end_reason else WorkerState.RUNNING
            where = "main"
            if rc.cancel_reason is None:
                if type(self).main is BaseWorker.main:
                    await self._stop_event().wait()  # the default body, without its frame
                else:
                    await self.main()
            if rc.end_task is not None and not rc.end_task.done():
                await asyncio.wait({rc.end_task})  # a graceful stop lets on_end finish
        except asyncio.CancelledError:
            rc.in_main = False
            task = asyncio.current_task()
            if rc.own_cancel and task is not None and task.cancelling() == 1:
                task.uncancel()  # our own cancel (a cancel request): the life goes on to its end
                rc.state = WorkerState.CANCELLED
                return
            # Cancelled from outside (the runner's backstop, or the caller of run()).
            rc.state = WorkerState.CANCELLED
            if rc.entered:
                await self._call_on_cancel(rc.cancel_reason or "cancelled")
            raise
        except Exception as exc:
            self._fail(exc, where)
        else:
            if rc.state is not WorkerState.FAILED:
                rc.state = WorkerState.FINISHED if rc.cancel_reason is None else WorkerState.CANCELLED
        finally:
            rc.in_main = False
            if rc.own_cancel:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    task.uncancel()  # main swallowed our cancel: do not let it linger

    async def _receive(self, message: BusMessage) -> None:
        cls = type(message)
        if cls is BusDataMessage:  # the common case first
            if self.accepts_bus_message(message):
                await self.on_bus_message(message)
            return
        if cls is BusEndWorkerMessage or isinstance(message, BusEndWorkerMessage):
            if message.target == self._rc.name:
                await self._begin_end(message.reason)  # type: ignore[attr-defined]
            return
        if cls is BusCancelWorkerMessage or isinstance(message, BusCancelWorkerMessage):
            if message.target == self._rc.name:
                await self._begin_cancel(message.reason)  # type: ignore[attr-defined]
            return
        if isinstance(message, _RUNNER_MESSAGES):
            return
        if message.target is not None and message.target != self._rc.name and message.target[:1] != "@":
            return
        if not self.accepts_bus_message(message):
            return
        await self.on_bus_message(message)

    def _log_fields(self, event: str) -> dict[str, Any]:
        """The fields every log line about this worker carries (``--log-format json``)."""
        runner = self._rc.runner
        return {"event": event, "worker": self._rc.name, "runner": runner.name if runner is not None else None}

    def _stop_event(self) -> _StopFlag:
        event = self._rc.stop_event
        if event is None:
            event = self._rc.stop_event = _StopFlag()
        return event

    async def _begin_end(self, reason: str | None) -> None:
        rc = self._rc
        if rc.state.final or rc.end_reason is not None or rc.cancel_reason is not None:
            return
        rc.end_reason = reason or "end requested"
        if rc.state is WorkerState.RUNNING:
            rc.state = WorkerState.STOPPING
        await self._tell_children(BusEndWorkerMessage, rc.end_reason)
        if type(self).on_end is BaseWorker.on_end:
            self._stop_event().set()  # nothing to wrap up: no task needed
            return
        # on_end runs in a task of its own: the inbox stays free for a cancel that cuts it short.
        rc.end_task = asyncio.get_running_loop().create_task(self._call_on_end(reason), name=f"worker:{rc.name}:on_end")

    def _end_directly(self, bus: Any, reason: str | None = None) -> bool:
        """End now, without a message through the inbox, when that changes nothing a message
        would do: the default ``on_end``, no children, and an inbox with nothing queued or being
        handled (the end would be the next thing it handles). True if it did; ending 10,000 idle
        workers then costs no task each."""
        rc = self._rc
        if type(self).on_end is not BaseWorker.on_end or rc.children or type(self)._receive is not BaseWorker._receive:
            return False
        if not bus.is_idle(rc.name):
            return False
        if not (rc.state.final or rc.end_reason is not None or rc.cancel_reason is not None):
            rc.end_reason = reason or "end requested"
            if rc.state is WorkerState.RUNNING:
                rc.state = WorkerState.STOPPING
            self._stop_event().set()
        return True

    async def _call_on_end(self, reason: str | None) -> None:
        # Set the stop here, not before: main() resumes after on_end has begun (it may be
        # waiting for what on_end sets up).
        self._stop_event().set()
        try:
            await self.on_end(reason)
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("worker %r: on_end failed", self._rc.name)

    async def _begin_cancel(self, reason: str | None) -> None:
        rc = self._rc
        if rc.state.final or rc.cancel_reason is not None:
            return
        rc.cancel_reason = reason or "cancel requested"
        self._stop_event().set()
        if rc.state is WorkerState.RUNNING:
            rc.state = WorkerState.STOPPING
        await self._tell_children(BusCancelWorkerMessage, rc.cancel_reason)
        if rc.end_task is not None and not rc.end_task.done():
            rc.end_task.cancel()  # the cancel cuts a graceful stop short
        if rc.entered:
            await self._call_on_cancel(reason)
        if rc.in_main and rc.task is not None and not rc.task.done() and not rc.own_cancel:
            rc.own_cancel = True
            rc.task.cancel()

    async def _call_on_cancel(self, reason: str | None) -> None:
        rc = self._rc
        if rc.cancel_called:
            return
        rc.cancel_called = True
        try:
            await self.on_cancel(reason)
        except Exception:
            logger.exception("worker %r: on_cancel failed", rc.name)

    async def _maybe_activate(self) -> None:
        rc = self._rc
        if rc.started_at is not None and rc.pending_activation:
            rc.active = True
            rc.pending_activation = False
            await self.on_activated(rc.activation_args)
            await self._call_event_handler("on_activated", rc.activation_args)

    async def _deactivate(self) -> None:
        rc = self._rc
        rc.active = False
        rc.activation_args = None
        await self.on_deactivated()
        await self._call_event_handler("on_deactivated")

    async def _on_watched_worker_ready(self, data: WorkerReadyData) -> None:
        method = ready_handlers_of(type(self)).get(data.worker_name)
        if method is not None:
            await getattr(self, method)(data)
        await self.on_worker_ready(data)
        await self._call_event_handler("on_worker_ready", data)

    async def _tell_children(self, kind: type[BusEndWorkerMessage] | type[BusCancelWorkerMessage], reason: str) -> None:
        rc = self._rc
        if rc.bus is None:
            return
        for child in list(rc.children):
            if child._rc.runner is not None and not child._rc.state.final:
                await rc.bus.send(kind(source=rc.name, target=child.name, reason=reason))

    async def _wait_for_dependencies(self) -> bool:
        """Wait until every dependency is ready; False if stopped first or a dependency can't be."""
        rc = self._rc
        runner = self.worker_runner
        pending = [d for d in rc.depends_on if not runner._dependency_met(d, self.dependency_condition(d))]
        if not pending:
            return True
        shown = ", ".join(d if self.dependency_condition(d) == "ready" else f"{d} ({self.dependency_condition(d)})" for d in pending)
        logger.info("worker %s waits for %s", rc.name, shown, extra={"event": "worker_waiting", "worker": rc.name, "runner": runner.name})
        rc.t_start = time.monotonic()
        waits: dict[asyncio.Future[Any], str] = {
            asyncio.ensure_future(runner.wait_dependency(d, self.dependency_condition(d))): d for d in pending
        }
        stop: asyncio.Future[Any] = asyncio.ensure_future(self._stop_event().wait())
        try:
            while waits:
                done, _ = await asyncio.wait({*waits, stop}, return_when=asyncio.FIRST_COMPLETED)
                if stop in done:
                    rc.state = WorkerState.CANCELLED if rc.cancel_reason else WorkerState.FINISHED
                    return False
                for fut in done:
                    dep = waits.pop(fut)
                    error = fut.exception()
                    if error is not None:
                        self._fail(DependencyError(f"dependency {dep!r} {error}"), "depends_on")
                        return False
        finally:
            for fut in (*waits, stop):
                fut.cancel()
        return True

    def _fail(self, exc: BaseException, where: str) -> None:
        rc = self._rc
        rc.state = WorkerState.FAILED
        rc.error = exc
        exc.add_note(f"raised by {where}() of worker {rc.name!r}")

    async def _settle_children(self) -> None:
        """End children that are still running (unless already asked) and wait for them."""
        rc = self._rc
        live = [c for c in rc.children if c._rc.runner is not None]
        if not live or rc.bus is None:
            return
        if rc.end_reason is None and rc.cancel_reason is None:
            reason = f"parent {rc.name!r} {rc.state.value}"
            for child in live:
                await rc.bus.send(BusEndWorkerMessage(source=rc.name, target=child.name, reason=reason))
        await asyncio.gather(*(c.wait() for c in live))

    def _finished(self) -> None:
        """Called by the runner once the worker's life is over."""
        rc = self._rc
        rc.t_end = time.monotonic()
        if rc.done is not None and not rc.done.done():
            rc.done.set_result(None)

    def __repr__(self) -> str:
        rc = self._rc
        parent = f" parent={rc.parent}" if rc.parent else ""
        return f"<{type(self).__name__} {rc.name} {rc.state.value}{parent}>"


class DependencyError(RuntimeError):
    """A worker in ``depends_on`` finished (or failed) without ever becoming ready."""

    log_traceback = False
