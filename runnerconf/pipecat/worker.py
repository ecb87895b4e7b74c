"""``PipecatPipelineWorker``: a pipecat pipeline, run by pipecat's own ``PipelineWorker``, as one
worker of a runnerconf runner.

The pipeline runs as pipecat runs it -- pipecat's ``PipelineWorker`` under a ``WorkerRunner`` of
pipecat's of its own (no signal handling: the runnerconf runner owns signals) -- so processors,
observers, idle timeouts, metrics and RTVI behave as in a pipecat bot. Around it:

* a graceful end of the worker is pipecat's end: an ``EndFrame`` queued behind what is already
  queued, so the pipeline drains; a cancel is pipecat's cancel (a ``CancelFrame``). The runner's
  grace ladder (``stop_timeout``, then cancel, then ``cancel_timeout``) bounds both;
* the worker is ready once the ``StartFrame`` has gone through the whole pipeline;
* what reaches the end of the pipeline is sent to ``send_to`` as bus data, and bus data sent to
  the worker is pushed into the pipeline as frames (see :mod:`runnerconf.pipecat.frames`). A frame
  that came in from the bus is never sent out again, so two pipelines cannot bounce it;
* a pipecat ``end()``/``cancel()`` of the session (``BusEndMessage``/``BusCancelMessage``, for
  instance an idle timeout with ``cancel_runner_on_idle_timeout``) ends or cancels the
  runnerconf runners, as it would pipecat's;
* errors: with ``on_error="skip"`` (pipecat's way, the default) an ``ErrorFrame`` is logged and
  the pipeline goes on; with ``"fail"`` the first one cancels the pipeline and fails the worker.
  Either way a pipeline that cancels itself (a fatal error, an unusable processor with the CANCEL
  policy) or never starts fails the worker; an idle timeout does not.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from runnerconf.bus.messages import BusDataMessage, BusMessage
from runnerconf.pipecat import INSTALL_HINT
from runnerconf.pipecat.frames import FrameCodec
from runnerconf.workers.base_worker import BaseWorker

try:
    from pipecat.bus import BusCancelMessage as PipecatBusCancelMessage
    from pipecat.bus import BusEndMessage as PipecatBusEndMessage
    from pipecat.bus.subscriber import BusSubscriber as PipecatBusSubscriber
    from pipecat.frames.frames import CancelFrame, EndFrame, ErrorFrame, Frame, StartFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineWorker as PipecatPipelineWorkerImpl
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.workers.runner import WorkerRunner as PipecatWorkerRunner
except ImportError as exc:  # pragma: no cover - the extra is a test dependency
    raise ImportError(f"{INSTALL_HINT} ({exc})") from exc

__all__ = ["PipecatPipelineError", "PipecatPipelineWorker"]

logger = logging.getLogger(__name__)

ErrorPolicy = Literal["fail", "skip"]
#: Frames from the bus remembered (by id) until they reach the end of the pipeline; a processor
#: that drops them would otherwise let the set grow.
_FROM_BUS_LIMIT = 10_000


class PipecatPipelineError(RuntimeError):
    """A pipecat pipeline failed: an error frame (with ``on_error="fail"``), a cancel of its own,
    or a pipeline that never started. pipecat has logged the cause (a processor's traceback) by
    then: the failure itself is logged without one."""

    log_traceback = False


class PipecatPipelineWorker(BaseWorker):
    """A pipeline of pipecat ``FrameProcessor``\\ s as a runnerconf worker.

    Args:
        name: The worker's name (also the name of pipecat's ``PipelineWorker``).
        processors: The processors, in order (instances of ``FrameProcessor``).
        send_to: Name of the worker that receives, as bus data, what reaches the end of the pipeline.
        on_error: ``"skip"`` (pipecat's way: error frames are logged, the pipeline goes on) or
            ``"fail"`` (the first error frame cancels the pipeline and fails the worker).
        converters: Frame converters of this worker, asked before the registered ones and the
            text converter (see :mod:`runnerconf.pipecat.frames`).
        active: See :class:`~runnerconf.workers.base_worker.BaseWorker`.
        check_dangling_tasks: Warn about tasks the pipeline leaves behind.
        **pipeline_params: Keyword arguments of pipecat's ``PipelineWorker`` (``params``,
            ``idle_timeout_secs``, ``cancel_on_idle_timeout``, ``cancel_timeout_secs``, ...).
    """

    #: Ready once the StartFrame has gone through the pipeline, not when on_start returns.
    ready_on_start = False

    def __init__(
        self,
        name: str | None,
        processors: Sequence[Any],
        *,
        send_to: str | None = None,
        on_error: ErrorPolicy = "skip",
        converters: Iterable[Any] = (),
        active: bool = True,
        check_dangling_tasks: bool = True,
        **pipeline_params: Any,
    ) -> None:
        super().__init__(name, active=active, check_dangling_tasks=check_dangling_tasks)
        for p in processors:
            if not isinstance(p, FrameProcessor):
                raise TypeError(f"pipeline {self.name!r}: {p!r} is not a pipecat FrameProcessor")
        if on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
        if "name" in pipeline_params or "pipeline" in pipeline_params:
            raise TypeError("the pipeline and its name are the worker's: not pipeline params")
        self.send_to = send_to
        self.on_error = on_error
        #: Frames pushed in from the bus, and frames sent out to ``send_to``.
        self.frames_received = 0
        self.frames_sent = 0
        self._codec = FrameCodec(converters)
        self._from_bus: OrderedDict[int, None] = OrderedDict()
        self._failure: PipecatPipelineError | None = None
        self._stopping = False  # we asked the pipeline to end or cancel
        self._end_queued = False  # an EndFrame is on its way
        self._idle = False
        self._started = False
        self._inner: PipecatWorkerRunner | None = None
        pipeline = Pipeline([*processors, _Outlet(self)])
        #: pipecat's ``PipelineWorker`` running the pipeline (for its event handlers and frames).
        self.pipeline_worker = PipecatPipelineWorkerImpl(
            pipeline, name=self.name, check_dangling_tasks=check_dangling_tasks, **pipeline_params
        )
        self._watch(self.pipeline_worker)

    # -- frames in -------------------------------------------------------------------------------

    async def queue_frame(self, frame: Any) -> None:
        """Queue a frame, or a payload a converter makes one of (a string is a ``TextFrame``)."""
        converted = self._codec.from_payload(frame)
        if converted is not None:
            await self.pipeline_worker.queue_frame(converted)

    async def queue_frames(self, frames: Iterable[Any]) -> None:
        """Queue frames (or payloads), in order."""
        for frame in frames:
            await self.queue_frame(frame)

    async def stop_when_done(self) -> None:
        """End once the frames queued so far have gone through (an ``EndFrame`` behind them)."""
        self._end_queued = True
        await self.pipeline_worker.queue_frame(EndFrame())

    async def on_bus_message(self, message: BusMessage) -> None:
        await super().on_bus_message(message)
        if isinstance(message, BusDataMessage):
            frame = self._codec.from_payload(message.payload)
            if frame is None:
                return
            self._from_bus[frame.id] = None
            if len(self._from_bus) > _FROM_BUS_LIMIT:
                self._from_bus.popitem(last=False)
            self.frames_received += 1
            await self.pipeline_worker.queue_frame(frame)

    # -- frames out ------------------------------------------------------------------------------

    async def _emit(self, frame: Frame) -> None:
        if self._from_bus and self._from_bus.pop(frame.id, False) is None:
            return  # came in from the bus: never sent back out
        if self.send_to is None:
            return
        payload = self._codec.to_payload(frame)
        if payload is not None:
            self.frames_sent += 1
            await self.send(self.send_to, payload)

    # -- lifecycle -------------------------------------------------------------------------------

    async def main(self) -> None:
        inner = PipecatWorkerRunner(
            name=f"{self.name}@pipecat",
            handle_sigint=False,
            handle_sigterm=False,
            check_dangling_tasks=self.check_dangling_tasks,
        )
        self._inner = inner
        await inner.bus.subscribe(_Session(self))
        await inner.add_workers(self.pipeline_worker)
        await inner.run()
        if self._failure is None and not self._started and not self._stopping:
            self._failure = PipecatPipelineError(f"pipeline {self.name!r} did not start")
        if self._failure is not None:
            raise self._failure

    async def on_end(self, reason: str | None) -> None:
        # pipecat's end: an EndFrame behind what is queued, so the pipeline drains first.
        self._stopping = self._end_queued = True
        await self.pipeline_worker.queue_frame(EndFrame(reason=reason))

    async def on_cancel(self, reason: str | None) -> None:
        self._stopping = True
        await self._cancel_pipeline(reason)

    async def _cancel_pipeline(self, reason: str | None) -> None:
        pw = self.pipeline_worker
        await pw.cancel(reason=reason)
        if self._end_queued and self._started:
            # pipecat takes frames from its queue one at a time, and waits for an EndFrame to
            # drain: a CancelFrame queued behind it would wait as long. Sent into the pipeline
            # itself, it cuts the drain short (as an end cut short by the grace period must).
            await pw.pipeline.queue_frame(CancelFrame(reason=reason), FrameDirection.DOWNSTREAM)

    def _watch(self, pw: PipecatPipelineWorkerImpl) -> None:
        @pw.event_handler("on_pipeline_started")
        async def started(_pw: Any, frame: StartFrame) -> None:
            self._started = True
            await self.mark_ready()

        @pw.event_handler("on_pipeline_error")
        async def error(_pw: Any, frame: ErrorFrame) -> None:
            if self.on_error == "fail" and self._failure is None:
                self._failure = PipecatPipelineError(f"pipeline {self.name!r}: {frame.error}")
                await self._cancel_pipeline(f"error: {frame.error}")

        @pw.event_handler("on_idle_timeout")
        async def idle(_pw: Any) -> None:
            self._idle = True

        @pw.event_handler("on_setup_timeout")
        async def setup_timeout(_pw: Any) -> None:
            self._failure = self._failure or PipecatPipelineError(f"pipeline {self.name!r}: a processor did not finish setting up")

        @pw.event_handler("on_pipeline_finished")
        async def finished(_pw: Any, frame: Frame) -> None:
            if isinstance(frame, CancelFrame) and not self._stopping and not self._idle and self._failure is None:
                self._failure = PipecatPipelineError(f"pipeline {self.name!r} cancelled itself: {frame.reason or 'no reason given'}")


class _Outlet(FrameProcessor):
    """The last processor: hands what goes downstream to the worker, and passes it on."""

    def __init__(self, worker: PipecatPipelineWorker) -> None:
        super().__init__(name=f"{worker.name}.outlet")
        self._worker = worker

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM:
            await self._worker._emit(frame)
        await self.push_frame(frame, direction)


class _Session(PipecatBusSubscriber):
    """On pipecat's bus of the pipeline: its end or cancel of the session reaches our runners."""

    def __init__(self, worker: PipecatPipelineWorker) -> None:
        self._worker = worker

    @property
    def name(self) -> str:
        return f"{self._worker.name}@session"

    async def on_bus_message(self, message: Any) -> None:
        worker = self._worker
        if getattr(message, "source", None) != worker.pipeline_worker.name:
            return
        if isinstance(message, PipecatBusCancelMessage):
            await worker.cancel(reason=message.reason)
        elif isinstance(message, PipecatBusEndMessage):
            await worker.end(reason=message.reason)
