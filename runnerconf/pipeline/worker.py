"""``PipelineWorker``: frames through an ordered list of processors."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal

from runnerconf.bus.messages import BusDataMessage, BusMessage
from runnerconf.workers.base_worker import BaseWorker, _WorkerCore

__all__ = ["PipelineWorker", "Processor"]

logger = logging.getLogger(__name__)

#: A processor takes a frame and returns a frame, a list of frames, or None (drop); sync or async.
Processor = Callable[[Any], Any | Awaitable[Any]]

ErrorPolicy = Literal["fail", "skip"]


class _EndOfStream:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<end of stream>"


_EOS = _EndOfStream()


class _PipelineCore(_WorkerCore):
    __slots__ = ("queue", "closed", "frames_in", "frames_out", "frames_dropped", "frames_failed")


class PipelineWorker(BaseWorker):
    """Runs frames (any Python value) through ``processors``, in order.

    Frames come from :meth:`queue_frame` / :meth:`queue_frames` and from :class:`BusDataMessage`
    payloads sent to the worker. What the last processor returns goes to :meth:`on_output`, which
    sends it on to the worker named ``send_to`` (if any).

    :meth:`stop_when_done` finishes the frames already queued, then ends; a graceful end does the
    same (it drains), a cancel does not. Frames queued after the end of stream are dropped (counted
    in ``frames_dropped``).

    Args:
        name: The worker's name.
        processors: Callables, frame in, frame / list of frames / None out; sync or async.
        send_to: Name of the worker that receives the output frames.
        on_error: ``"fail"`` (a processor that raises fails the worker) or ``"skip"`` (the error
            is logged, the frame dropped and the pipeline goes on).
        max_queued: Bound of the input queue (0: unbounded); a full queue makes senders wait.
        active: See :class:`BaseWorker`.
    """

    def __init__(
        self,
        name: str | None,
        processors: Sequence[Processor],
        *,
        send_to: str | None = None,
        on_error: ErrorPolicy = "fail",
        max_queued: int = 0,
        active: bool = True,
    ) -> None:
        super().__init__(name, active=active)
        rc = self._rc
        rc.queue = asyncio.Queue(max_queued)
        rc.closed = False
        rc.frames_in = rc.frames_out = rc.frames_dropped = rc.frames_failed = 0
        for p in processors:
            if not callable(p):
                raise TypeError(f"pipeline {self.name!r}: processor {p!r} is not callable")
        if on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
        self.processors: list[Processor] = list(processors)
        self.send_to = send_to
        self.on_error = on_error

    _core_type = _PipelineCore
    _rc: _PipelineCore

    @property
    def frames_in(self) -> int:
        """Frames queued for processing."""
        return self._rc.frames_in

    @property
    def frames_out(self) -> int:
        """Frames the last processor returned."""
        return self._rc.frames_out

    @property
    def frames_dropped(self) -> int:
        """Frames queued after the end of stream (dropped)."""
        return self._rc.frames_dropped

    @property
    def frames_failed(self) -> int:
        """Frames a processor failed on (with ``on_error="skip"``)."""
        return self._rc.frames_failed

    # -- input ---------------------------------------------------------------------------------

    async def queue_frame(self, frame: Any) -> None:
        """Queue one frame for processing."""
        rc = self._rc
        if rc.closed:
            rc.frames_dropped += 1
            logger.warning("pipeline %s: end of stream queued; dropped frame %s", self.name, _short(frame))
            return
        rc.frames_in += 1
        await rc.queue.put(frame)

    async def queue_frames(self, frames: Iterable[Any]) -> None:
        """Queue several frames, in order."""
        for frame in frames:
            await self.queue_frame(frame)

    async def stop_when_done(self) -> None:
        """Process the frames already queued, then finish."""
        rc = self._rc
        if not rc.closed:
            rc.closed = True
            await rc.queue.put(_EOS)

    @property
    def queued(self) -> int:
        """Frames waiting to be processed."""
        queue = self._rc.queue
        return queue.qsize() - (1 if self._rc.closed and not queue.empty() else 0)

    # -- lifecycle -----------------------------------------------------------------------------

    async def on_end(self, reason: str | None) -> None:
        # A graceful end drains: what was queued before it is still processed.
        await self.stop_when_done()

    async def on_bus_message(self, message: BusMessage) -> None:
        if type(message) is BusDataMessage:
            await self.queue_frame(message.payload)

    async def main(self) -> None:
        queue = self._rc.queue
        while True:
            frame = await queue.get()
            if frame is _EOS:
                return
            await self._process(frame)

    async def _process(self, frame: Any) -> None:
        frames = [frame]
        for processor in self.processors:
            produced: list[Any] = []
            for f in frames:
                try:
                    out = processor(f)
                    if inspect.isawaitable(out):
                        out = await out
                except Exception:
                    if self.on_error == "fail":
                        raise
                    self._rc.frames_failed += 1
                    logger.exception("pipeline %s: processor %r failed on frame %s", self.name, processor, _short(f))
                    continue
                if out is None:
                    continue
                if isinstance(out, (list, tuple)):
                    produced.extend(out)
                else:
                    produced.append(out)
            frames = produced
            if not frames:
                return
        for f in frames:
            await self.on_output(f)

    async def on_output(self, frame: Any) -> None:
        """Called with every frame the last processor returns. Default: send it to ``send_to``."""
        self._rc.frames_out += 1
        if self.send_to is not None:
            await self.send(self.send_to, frame)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
