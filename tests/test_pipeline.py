"""PipelineWorker: processors, routing, draining and error policy."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from runnerconf.bus import BusDataMessage, BusMessage
from runnerconf.pipeline.worker import PipelineWorker
from runnerconf.workers.base_worker import BaseWorker
from runnerconf.workers.runner import WorkerRunner

from .helpers import eventually


class Collector(BaseWorker):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.frames: list[Any] = []

    async def on_bus_message(self, message: BusMessage) -> None:
        if isinstance(message, BusDataMessage):
            self.frames.append(message.payload)


async def test_processors_sync_async_fan_out_and_drop() -> None:
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    def split(x: int) -> list[int] | None:
        return None if x == 4 else [x, -x]

    runner = WorkerRunner(handle_sigint=False)
    pipe = PipelineWorker("pipe", [double, split, str], send_to="sink")
    sink = Collector("sink")
    await runner.add_workers(pipe, sink)
    await pipe.queue_frames([1, 2, 3])
    await pipe.stop_when_done()
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(lambda: len(sink.frames) == 4)
    await runner.end()
    await task
    assert sink.frames == ["2", "-2", "6", "-6"]
    assert (pipe.frames_in, pipe.frames_out) == (3, 4)


async def test_data_messages_are_frames_and_pipelines_chain() -> None:
    runner = WorkerRunner(handle_sigint=False)
    first = PipelineWorker("first", [lambda s: s.upper()], send_to="second")
    second = PipelineWorker("second", [lambda s: s + "!"], send_to="sink")
    sink = Collector("sink")
    await runner.add_workers(first, second, sink)
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(lambda: runner.running)
    await runner.bus.send(BusDataMessage(source="test", target="first", payload="hi"))
    await runner.bus.send(BusDataMessage(source="test", target="first", payload="there"))
    await eventually(lambda: len(sink.frames) == 2)
    assert sink.frames == ["HI!", "THERE!"]
    await runner.end()
    await task


async def test_end_drains_cancel_does_not() -> None:
    processed: list[int] = []

    async def slow(x: int) -> None:
        await asyncio.sleep(0.005)
        processed.append(x)

    # A graceful end processes what was queued before it.
    runner = WorkerRunner(handle_sigint=False)
    pipe = PipelineWorker("pipe", [slow])
    await runner.add_workers(pipe)
    await pipe.queue_frames(range(20))
    runner.add_event_handler("on_ready", lambda r: asyncio.ensure_future(r.end()))
    await runner.run(auto_end=False)
    assert processed == list(range(20))
    assert runner.results["pipe"].outcome == "finished"

    # A cancel stops at once.
    processed.clear()
    runner = WorkerRunner(handle_sigint=False)
    pipe = PipelineWorker("pipe", [slow])
    await runner.add_workers(pipe)
    await pipe.queue_frames(range(200))
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(lambda: len(processed) >= 2)
    await runner.cancel("stop")
    await task
    assert 2 <= len(processed) < 200
    assert runner.results["pipe"].outcome == "cancelled"


async def test_frames_after_end_of_stream_are_dropped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    pipe = PipelineWorker("pipe", [lambda x: x])
    await pipe.queue_frame(1)
    await pipe.stop_when_done()
    with caplog.at_level(logging.WARNING):
        await pipe.queue_frame(2)
    assert pipe.frames_dropped == 1
    assert "dropped frame 2" in caplog.text
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(pipe)
    await runner.run()
    assert pipe.frames_out == 1


async def test_error_policy_fail_fails_the_worker_skip_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    def picky(x: int) -> int:
        if x == 2:
            raise ValueError("two is bad")
        return x

    runner = WorkerRunner(handle_sigint=False)
    errors: list[str] = []
    runner.add_event_handler("on_error", lambda r, w, e: errors.append(f"{w.name}:{e}"))
    failing = PipelineWorker("failing", [picky])
    skipping = PipelineWorker("skipping", [picky], on_error="skip")
    await runner.add_workers(failing, skipping)
    for p in (failing, skipping):
        await p.queue_frames([1, 2, 3])
        await p.stop_when_done()
    with caplog.at_level(logging.ERROR):
        await runner.run()
    assert errors == ["failing:two is bad"]
    assert runner.results["failing"].outcome == "failed"
    assert runner.results["skipping"].outcome == "finished"
    assert (skipping.frames_out, skipping.frames_failed) == (2, 1)
    assert "processor" in caplog.text and "frame 2" in caplog.text


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(TypeError, match="not callable"):
        PipelineWorker("p", [42])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="on_error"):
        PipelineWorker("p", [], on_error="ignore")  # type: ignore[arg-type]
