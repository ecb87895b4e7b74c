"""``BaseWorker``: the unit a runner starts, ends and cancels."""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from runnerconf.bus.messages import (
    BusAddWorkerMessage,
    BusCancelMessage,
    BusCancelWorkerMessage,
    BusDataMessage,
    BusEndMessage,
    BusEndWorkerMessage,
    BusMessage,
    BusWorkerRegistryMessage,
)

if TYPE_CHECKING:
    from runnerconf.bus.base import WorkerBus
    from runnerconf.registry import WorkerRegistry
    from runnerconf.workers.runner import WorkerRunner

__all__ = ["BaseWorker", "DependencyError", "WorkerState"]

logger = logging.getLogger(__name__)

_RUNNER_MESSAGES = (BusEndMessage, BusCancelMessage, BusWorkerRegistryMessage, BusAddWorkerMessage)


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
        return self in (WorkerState.FINISHED, WorkerState.FAILED, WorkerState.CANCELLED)


class _Inbox:
    """The bus subscriber of a worker: lifecycle messages first, then the worker's own hook."""

    __slots__ = ("name", "on_bus_message")

    def __init__(self, worker: BaseWorker) -> None:
        self.name = worker.name
        self.on_bus_message = worker._receive


class BaseWorker:
    """Base class of every worker.

    Write a worker by overriding the async hooks you need:

    * :meth:`main` -- the body; when it returns the worker has finished (``auto_end`` waits for
      that). The default body waits until the worker is asked to stop.
    * :meth:`on_start` -- once, before :meth:`main`.
    * :meth:`on_end` -- a graceful stop was asked; :meth:`main` gets the runner's grace period
      (``stop_timeout``) to return before it is cancelled.
    * :meth:`on_cancel` -- the worker is being cancelled (its :meth:`main` is cancelled next).
    * :meth:`on_bus_message` -- every message addressed to this worker, or broadcast, that the
      lifecycle did not consume.

    A worker's lifetime encloses its children's: when :meth:`main` returns, children still running
    are ended, and the worker finishes once they have.

    A worker is *ready* (registered in the registry, so others can ``watch`` it) once
    :meth:`on_start` has returned -- or, for a subclass that sets ``ready_on_start = False``, when
    it calls :meth:`mark_ready` itself (a supervised process that prints "listening on ...").

    Args:
        name: Unique name in the topology. Default: ``ClassName#N``.
        active: An inactive worker is not handed data messages (they are dropped).
        depends_on: Names of workers (on this runner or, over a network bus, on another) that must
            be ready before this one starts.
    """

    _counters: ClassVar[dict[type, itertools.count[int]]] = {}
    #: Register as ready as soon as on_start() returns (False: call mark_ready() yourself).
    ready_on_start: ClassVar[bool] = True

    def __init__(self, name: str | None = None, *, active: bool = True, depends_on: Sequence[str] = ()) -> None:
        if name is None:
            counter = BaseWorker._counters.setdefault(type(self), itertools.count(1))
            name = f"{type(self).__name__}#{next(counter)}"
        self._name = name
        self.active = active
        self.depends_on: list[str] = list(depends_on)
        self._ready = False
        self._parent: str | None = None
        self._children: list[str] = []
        self._pending_children: list[BaseWorker] = []
        self._runner: WorkerRunner | None = None
        self._stop = asyncio.Event()
        self._end_reason: str | None = None
        self._cancel_reason: str | None = None
        self._main_task: asyncio.Task[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self.state = WorkerState.CREATED
        #: Wall-clock time (``time.time()``) when the runner started the worker.
        self.started_at: float | None = None
        self._t_start: float | None = None
        self._t_end: float | None = None
        #: The exception that made the worker fail, if it did.
        self.error: BaseException | None = None

    # -- identity and wiring -------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The worker's name, unique across the topology."""
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        if self._runner is not None:
            raise RuntimeError(f"cannot rename worker {self._name!r}: it is attached to a runner")
        self._name = value

    @property
    def parent(self) -> str | None:
        """Name of the parent worker, or None for a root."""
        return self._parent

    @property
    def children(self) -> list[str]:
        """Names of the children added with :meth:`add_child`."""
        return list(self._children)

    @property
    def runner(self) -> WorkerRunner:
        """The runner this worker was added to (RuntimeError before that)."""
        if self._runner is None:
            raise RuntimeError(f"worker {self._name!r} is not attached to a runner")
        return self._runner

    @property
    def bus(self) -> WorkerBus:
        """The runner's bus (RuntimeError before the worker is added to a runner)."""
        return self.runner.bus

    @property
    def registry(self) -> WorkerRegistry:
        """The runner's registry (RuntimeError before the worker is added to a runner)."""
        return self.runner.registry

    @property
    def stop_requested(self) -> bool:
        """True once an end or a cancel was asked."""
        return self._stop.is_set()

    @property
    def end_reason(self) -> str | None:
        """Why a graceful stop was asked, if it was."""
        return self._end_reason

    @property
    def cancel_reason(self) -> str | None:
        """Why the worker was cancelled, if it was."""
        return self._cancel_reason

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish (or to now, while running); None before start."""
        if self._t_start is None:
            return None
        end = self._t_end if self._t_end is not None else time.monotonic()
        return end - self._t_start

    @property
    def ready(self) -> bool:
        """True once the worker is registered as ready."""
        return self._ready

    def mark_ready(self) -> None:
        """Register this worker as ready (idempotent). Called for you unless ``ready_on_start`` is False."""
        if self._ready or self._runner is None or self.state.final:
            return
        self._ready = True
        self._runner._worker_ready(self)

    async def wait_for_stop(self) -> None:
        """Return once an end or a cancel was asked."""
        await self._stop.wait()

    # -- hooks ---------------------------------------------------------------------------------

    async def main(self) -> None:
        """The worker's body. Default: wait until asked to stop."""
        await self._stop.wait()

    async def on_start(self) -> None:
        """Called once when the runner starts the worker, before :meth:`main`."""

    async def on_end(self, reason: str | None) -> None:
        """A graceful stop was asked: wrap up so that :meth:`main` returns."""

    async def on_cancel(self, reason: str | None) -> None:
        """The worker is being cancelled; :meth:`main` is cancelled right after."""

    async def on_bus_message(self, message: BusMessage) -> None:
        """A message for this worker (or broadcast) that the lifecycle did not consume."""

    async def stop_when_done(self) -> None:
        """Finish the work already queued, then end. The base worker has no queue: a no-op."""

    # -- actions -------------------------------------------------------------------------------

    async def send(self, target: str, payload: Any) -> None:
        """Send ``payload`` in a :class:`BusDataMessage` to the worker named ``target``."""
        await self.bus.send(BusDataMessage(source=self._name, target=target, payload=payload))

    async def broadcast(self, payload: Any) -> None:
        """Send ``payload`` to every subscriber of the bus."""
        await self.bus.send(BusDataMessage(source=self._name, payload=payload))

    async def add_child(self, worker: BaseWorker) -> None:
        """Make ``worker`` a child of this one and have the runner start it.

        Before this worker is added to a runner the child is remembered and added along with it.
        """
        if worker is self:
            raise ValueError(f"worker {self._name!r} cannot be its own child")
        if worker._parent is not None and worker._parent != self._name:
            raise ValueError(f"worker {worker.name!r} already has parent {worker._parent!r}")
        if worker._runner is not None and worker._parent is None:
            raise ValueError(f"worker {worker.name!r} already runs as a root; add it as a child first")
        worker._parent = self._name
        if worker.name not in self._children:
            self._children.append(worker.name)
        if self._runner is None:
            self._pending_children.append(worker)
        elif worker._runner is None:
            await self._runner.add_workers(worker)

    async def end_runner(self, reason: str | None = None) -> None:
        """Ask this worker's runner to end gracefully."""
        await self.bus.send(BusEndMessage(source=self._name, target=self.runner.name, reason=reason))

    async def cancel_runner(self, reason: str | None = None) -> None:
        """Ask this worker's runner to cancel every worker."""
        await self.bus.send(BusCancelMessage(source=self._name, target=self.runner.name, reason=reason))

    # -- lifecycle (driven by the runner) ------------------------------------------------------

    def _attach(self, runner: WorkerRunner) -> None:
        self._runner = runner
        runner.bus.subscribe(_Inbox(self))

    async def _receive(self, message: BusMessage) -> None:
        if isinstance(message, BusEndWorkerMessage):
            if message.target == self._name:
                await self._begin_end(message.reason)
            return
        if isinstance(message, BusCancelWorkerMessage):
            if message.target == self._name:
                await self._begin_cancel(message.reason)
            return
        if isinstance(message, _RUNNER_MESSAGES):
            # Runner-level traffic (end/cancel a runner, registries, add-worker): not ours.
            return
        if not self.active and isinstance(message, BusDataMessage):
            logger.debug("inactive worker %r dropped %s", self._name, message)
            return
        await self.on_bus_message(message)

    async def _begin_end(self, reason: str | None) -> None:
        if self.state.final or self._end_reason is not None or self._cancel_reason is not None:
            return
        self._end_reason = reason or "end requested"
        self._stop.set()
        if self.state is WorkerState.RUNNING:
            self.state = WorkerState.STOPPING
        await self._tell_children(BusEndWorkerMessage, self._end_reason)
        try:
            await self.on_end(reason)
        except Exception:
            logger.exception("worker %r: on_end failed", self._name)

    async def _begin_cancel(self, reason: str | None) -> None:
        if self.state.final or self._cancel_reason is not None:
            return
        self._cancel_reason = reason or "cancel requested"
        self._stop.set()
        if self.state is WorkerState.RUNNING:
            self.state = WorkerState.STOPPING
        await self._tell_children(BusCancelWorkerMessage, self._cancel_reason)
        try:
            await self.on_cancel(reason)
        except Exception:
            logger.exception("worker %r: on_cancel failed", self._name)
        if self._main_task is not None:
            self._main_task.cancel()

    async def _tell_children(
        self, kind: type[BusEndWorkerMessage] | type[BusCancelWorkerMessage], reason: str
    ) -> None:
        if self._runner is None:
            return
        bus = self._runner.bus
        for child in self._children:
            if self._runner.get_worker(child) is not None:
                await bus.send(kind(source=self._name, target=child, reason=reason))

    async def _run(self) -> None:
        """Run the whole life: dependencies, on_start, ready, main, children; records ``state``."""
        self.state = WorkerState.STARTING
        if self.depends_on and not await self._wait_for_dependencies():
            await self._settle_children()
            return
        self.started_at = time.time()
        self._t_start = time.monotonic()
        try:
            await self.on_start()
        except Exception as exc:
            self._fail(exc, "on_start")
            await self._settle_children()
            return
        if self._cancel_reason is None:
            if self.ready_on_start:
                self.mark_ready()
            if self.state is WorkerState.STARTING:
                self.state = WorkerState.STOPPING if self._end_reason else WorkerState.RUNNING
            self._main_task = asyncio.get_running_loop().create_task(
                self.main(), name=f"worker:{self._name}:main"
            )
            try:
                await self._main_task
            except asyncio.CancelledError:
                self.state = WorkerState.CANCELLED
                if _being_cancelled():
                    # The runner cancelled this task itself (teardown backstop): stop here.
                    raise
            except Exception as exc:
                self._fail(exc, "main")
            else:
                self.state = WorkerState.FINISHED if self._cancel_reason is None else WorkerState.CANCELLED
        else:
            self.state = WorkerState.CANCELLED
        await self._settle_children()

    async def _wait_for_dependencies(self) -> bool:
        """Wait until every dependency is ready; False if stopped first or a dependency can't be."""
        runner = self.runner
        pending = [d for d in self.depends_on if d not in runner.registry]
        if not pending:
            return True
        logger.info(
            "worker %s waits for %s", self._name, ", ".join(pending), extra={"event": "worker_waiting", "worker": self._name}
        )
        self._t_start = time.monotonic()
        waits: dict[asyncio.Future[Any], str] = {asyncio.ensure_future(runner.wait_ready(d)): d for d in pending}
        stop: asyncio.Future[Any] = asyncio.ensure_future(self._stop.wait())
        try:
            while waits:
                done, _ = await asyncio.wait({*waits, stop}, return_when=asyncio.FIRST_COMPLETED)
                if stop in done:
                    self.state = WorkerState.CANCELLED if self._cancel_reason else WorkerState.FINISHED
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
        self.state = WorkerState.FAILED
        self.error = exc
        exc.add_note(f"raised by {where}() of worker {self._name!r}")

    async def _settle_children(self) -> None:
        """End children that are still running (unless already asked) and wait for them."""
        if self._runner is None or not self._children:
            return
        live = [w for w in map(self._runner.get_worker, self._children) if w is not None]
        if not live:
            return
        if self._end_reason is None and self._cancel_reason is None:
            reason = f"parent {self._name!r} {self.state.value}"
            for child in live:
                await self._runner.bus.send(
                    BusEndWorkerMessage(source=self._name, target=child.name, reason=reason)
                )
        tasks = [w._task for w in live if w._task is not None]
        if tasks:
            await asyncio.wait(tasks)

    def __repr__(self) -> str:
        parent = f" parent={self._parent}" if self._parent else ""
        return f"<{type(self).__name__} {self._name} {self.state.value}{parent}>"


class DependencyError(RuntimeError):
    """A worker in ``depends_on`` finished (or failed) without ever becoming ready."""

    log_traceback = False


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
