"""WorkerRunner: the behaviours listed in contract.md ("Keep" and "Do better")."""

from __future__ import annotations

import asyncio
import logging
import signal
import warnings

import pytest

from runnerconf.bus import (
    AsyncQueueBus,
    BusAddWorkerMessage,
    BusCancelMessage,
    BusDataMessage,
    BusEndMessage,
    BusEndWorkerMessage,
    BusMessage,
    BusWorkerReadyMessage,
)
from runnerconf.pipeline.worker import PipelineWorker
from runnerconf.workers.base_worker import BaseWorker
from runnerconf.workers.runner import WorkerRunner

from .helpers import Probe, eventually


def test_constructible_outside_a_loop_with_defaults() -> None:
    runner = WorkerRunner()
    assert runner.name.startswith("runner-") and len(runner.name) == len("runner-") + 8
    assert isinstance(runner.bus, AsyncQueueBus)
    assert runner.registry.runner_name == runner.name
    assert "idle" in repr(runner)
    with pytest.raises(TypeError):
        WorkerRunner("positional")  # type: ignore[misc]


async def test_zero_workers_auto_end_returns_at_once() -> None:
    runner = WorkerRunner(handle_sigint=False)
    await asyncio.wait_for(runner.run(), 2)
    assert runner.results == {}


async def test_auto_end_after_every_root_finishes() -> None:
    log: list[str] = []
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(Probe("fast", work=0, log=log), Probe("slow", work=0.1, log=log))
    await runner.run()
    assert runner.summary()["finished"] == 2
    # The fast root finishing first did not end the runner before the slow one ran its course.
    assert "slow:main-done" in log
    assert "slow:cancel(runner exiting)" not in log


async def test_auto_end_counts_roots_added_while_running() -> None:
    log: list[str] = []
    runner = WorkerRunner(handle_sigint=False)
    first = Probe("first", work=0, log=log)

    @runner.event_handler("on_ready")
    async def add_late(r: WorkerRunner) -> None:
        await r.add_workers(Probe("late", work=0.05, log=log))

    await runner.add_workers(first)
    await runner.run()
    assert runner.results["late"].outcome == "finished"
    assert "late:main-done" in log


async def test_auto_end_false_runs_until_end() -> None:
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(Probe("done-quickly", work=0))
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(lambda: "done-quickly" in runner.results)
    await asyncio.sleep(0.02)
    assert not task.done()
    await runner.end("bye")
    await asyncio.wait_for(task, 2)


async def test_duplicate_name_skipped_with_error(caplog: pytest.LogCaptureFixture) -> None:
    runner = WorkerRunner(handle_sigint=False)
    first, second = Probe("same", work=0), Probe("same", work=0)
    with caplog.at_level(logging.ERROR):
        await runner.add_workers(first, second)
    assert "already exists" in caplog.text
    assert runner.get_worker("same") is first
    await runner.run()
    assert first.state.value == "finished" and second.state.value == "created"


async def test_run_with_worker_is_deprecated_but_works() -> None:
    runner = WorkerRunner(handle_sigint=False)
    with pytest.warns(DeprecationWarning, match="add_workers"):
        await runner.run(Probe("legacy", work=0))
    assert runner.results["legacy"].outcome == "finished"


async def test_graceful_end_gives_slow_roots_their_grace_period() -> None:
    log: list[str] = []
    runner = WorkerRunner(handle_sigint=False, stop_timeout=5)
    slow = Probe("slow", end_delay=0.2, log=log)
    await runner.add_workers(slow)

    @runner.event_handler("on_ready")
    async def ready(r: WorkerRunner) -> None:
        await r.end("bye")

    await runner.run()
    assert log == ["slow:start", "slow:end(bye)", "slow:main-done"]
    assert runner.results["slow"].outcome == "finished"
    assert not runner.cancelled


async def test_grace_period_expires_then_cancel() -> None:
    log: list[str] = []
    runner = WorkerRunner(handle_sigint=False, stop_timeout=0.05)
    stubborn = Probe("stubborn", end_delay=60, log=log)
    await runner.add_workers(stubborn)
    runner.add_event_handler("on_ready", lambda r: asyncio.ensure_future(r.end("bye")))
    await asyncio.wait_for(runner.run(), 5)
    assert log == ["stubborn:start", "stubborn:end(bye)", "stubborn:cancel(stop_timeout expired)"]
    assert runner.results["stubborn"].outcome == "cancelled"


async def test_cancel_during_grace_cuts_it_short() -> None:
    runner = WorkerRunner(handle_sigint=False, stop_timeout=60)
    stubborn = Probe("stubborn", end_delay=60)
    await runner.add_workers(stubborn)
    task = asyncio.create_task(runner.run())
    await eventually(lambda: stubborn.state.value == "running")
    await runner.end("bye")
    await eventually(lambda: "stubborn:end(bye)" in stubborn.log)
    await runner.cancel("now")
    await asyncio.wait_for(task, 2)
    assert stubborn.log[-1] == "stubborn:cancel(now)"
    assert runner.cancelled


async def test_end_and_cancel_are_idempotent() -> None:
    log: list[str] = []
    runner = WorkerRunner(handle_sigint=False)
    w = Probe("w", log=log)
    await runner.add_workers(w)
    task = asyncio.create_task(runner.run())
    await eventually(lambda: w.state.value == "running")
    await runner.cancel("one")
    await runner.cancel("two")
    await runner.end("three")
    await task
    assert log == ["w:start", "w:cancel(one)"]


async def test_teardown_is_bounded_when_a_worker_ignores_cancellation(caplog: pytest.LogCaptureFixture) -> None:
    runner = WorkerRunner(handle_sigint=False, stop_timeout=0.05, cancel_timeout=0.05)
    bad = Probe("bad", ignore_cancel=True)
    good = Probe("good")
    await runner.add_workers(bad, good)
    runner.add_event_handler("on_ready", lambda r: asyncio.ensure_future(r.end()))
    with caplog.at_level(logging.WARNING):
        await asyncio.wait_for(runner.run(), 5)
    assert runner.results["bad"].outcome == "abandoned"
    assert runner.results["good"].outcome == "finished"
    assert "abandoning 1 worker(s) that ignore cancellation: bad" in caplog.text
    assert [r.name for r in runner.failed] == ["bad"]
    bad.released = True
    task = bad._rc.task
    assert task is not None
    task.cancel()
    await asyncio.wait([task])


async def test_run_propagates_the_callers_cancellation_after_teardown() -> None:
    log: list[str] = []
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(Probe("w", log=log))
    task = asyncio.create_task(runner.run())
    await eventually(lambda: "w:start" in log)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert runner.results["w"].outcome == "cancelled"
    assert "w:cancel(run() was cancelled)" in log

    runner2 = WorkerRunner(handle_sigint=False)
    await runner2.add_workers(Probe("w2"))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(runner2.run(), 0.05)
    assert runner2.results["w2"].outcome == "cancelled"


async def test_end_before_run_is_not_lost() -> None:
    log: list[str] = []
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(Probe("w", log=log))
    await runner.end("early")
    await asyncio.wait_for(runner.run(auto_end=False), 2)
    assert log == ["w:start", "w:end(early)", "w:main-done"]

    runner = WorkerRunner(handle_sigint=False)
    await runner.cancel("early")
    await asyncio.wait_for(runner.run(auto_end=False), 2)
    assert runner.cancelled


async def test_on_error_fires_and_other_workers_go_on() -> None:
    runner = WorkerRunner(handle_sigint=False)
    errors: list[tuple[str, str]] = []

    @runner.event_handler("on_error")
    def on_error(r: WorkerRunner, worker: BaseWorker, exc: BaseException) -> None:
        errors.append((worker.name, str(exc)))

    await runner.add_workers(
        Probe("crash", fail=RuntimeError("boom")),
        Probe("bad-start", fail_start=ValueError("no config")),
        Probe("steady", work=0.1),
    )
    await runner.run()
    assert sorted(errors) == [("bad-start", "no config"), ("crash", "boom")]
    assert runner.results["steady"].outcome == "finished"
    assert {r.name for r in runner.failed} == {"crash", "bad-start"}
    assert isinstance(runner.results["crash"].error, RuntimeError)


async def test_event_handler_failure_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    runner = WorkerRunner(handle_sigint=False)
    called: list[str] = []

    @runner.event_handler("on_ready")
    def broken(r: WorkerRunner) -> None:
        raise RuntimeError("handler bug")

    @runner.event_handler("on_ready")
    async def fine(r: WorkerRunner) -> None:
        called.append("fine")

    with pytest.raises(ValueError, match="unknown event"):
        runner.add_event_handler("on_redy", fine)
    with caplog.at_level(logging.ERROR):
        await runner.run()
    assert called == ["fine"]
    assert "handler bug" in caplog.text


async def test_end_and_cancel_go_to_roots_children_are_ended_by_their_parent() -> None:
    log: list[str] = []
    runner = WorkerRunner(handle_sigint=False)
    parent = Probe("parent", log=log)
    child = Probe("child", log=log)
    grandchild = Probe("grandchild", log=log)
    await parent.add_child(child)
    await child.add_child(grandchild)
    await runner.add_workers(parent)
    assert child.parent == "parent" and parent.children == [child]
    task = asyncio.create_task(runner.run())
    await eventually(lambda: "grandchild" in runner.registry)
    await runner.end("bye")
    await task
    ends = [e for e in log if "end(" in e]
    assert ends == ["parent:end(bye)", "child:end(bye)", "grandchild:end(bye)"]
    # The parent finished last: its lifetime encloses its children's.
    done_order = list(runner.results)
    assert done_order.index("parent") > done_order.index("child") > done_order.index("grandchild")
    # Readiness reaches a parent through on_worker_ready, never as a message to its handler.
    assert not any(isinstance(m, BusWorkerReadyMessage) for m in parent.messages)


async def test_children_are_ended_when_parent_main_returns() -> None:
    runner = WorkerRunner(handle_sigint=False)
    parent = Probe("parent", work=0.05)
    child = Probe("child")
    await parent.add_child(child)
    await runner.add_workers(parent)
    await asyncio.wait_for(runner.run(), 2)
    assert child.end_reason == "parent 'parent' finished"
    assert runner.results["child"].outcome == "finished"


async def test_child_talking_to_its_parent_while_ending_does_not_deadlock() -> None:
    runner = WorkerRunner(handle_sigint=False)

    class Parent(BaseWorker):
        async def on_bus_message(self, message: BusMessage) -> None:
            if isinstance(message, BusDataMessage) and message.payload == "last words?":
                await self.send(message.source, "granted")

    class Child(BaseWorker):
        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.reply: asyncio.Future[object] | None = None

        async def on_end(self, reason: str | None) -> None:
            self.reply = asyncio.get_running_loop().create_future()
            await self.send(self.parent or "", "last words?")

        async def on_bus_message(self, message: BusMessage) -> None:
            if self.reply is not None and isinstance(message, BusDataMessage):
                self.reply.set_result(message.payload)

        async def main(self) -> None:
            await self.wait_for_stop()
            assert self.reply is not None
            self.answer = await self.reply

    parent, child = Parent("parent"), Child("child")
    await parent.add_child(child)
    await runner.add_workers(parent)
    runner.add_event_handler("on_ready", lambda r: asyncio.ensure_future(r.end()))
    await asyncio.wait_for(runner.run(), 3)
    assert child.answer == "granted"
    assert runner.summary() == {"finished": 2, "failed": 0, "cancelled": 0, "abandoned": 0}


async def test_runner_reacts_to_end_cancel_and_add_messages_from_others() -> None:
    for msg, outcome in (
        (BusEndMessage(source="someone", reason="remote end"), "finished"),
        (BusCancelMessage(source="someone", reason="remote cancel"), "cancelled"),
    ):
        runner = WorkerRunner(handle_sigint=False)
        w = Probe("w")
        await runner.add_workers(w)
        task = asyncio.create_task(runner.run(auto_end=False))
        await eventually(lambda w=w: w.state.value == "running")  # type: ignore[misc]
        await runner.bus.send(msg)
        await asyncio.wait_for(task, 2)
        assert runner.results["w"].outcome == outcome

    runner = WorkerRunner(handle_sigint=False)
    added = Probe("added", work=0)
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(lambda: runner.running)
    await runner.bus.send(BusAddWorkerMessage(source="someone", worker=added))
    await eventually(lambda: "added" in runner.results)
    # The runner ignores its own end messages (it sent them itself).
    await runner.bus.send(BusEndMessage(source=runner.name))
    await asyncio.sleep(0.01)
    assert not task.done()
    await runner.end()
    await task


async def test_worker_can_end_the_runner() -> None:
    class Quitter(BaseWorker):
        async def main(self) -> None:
            await self.end_runner("quitting")
            await self.wait_for_stop()

    runner = WorkerRunner(handle_sigint=False)
    q, other = Quitter("q"), Probe("other")
    await runner.add_workers(q, other)
    await asyncio.wait_for(runner.run(auto_end=False), 2)
    assert other.end_reason == "quitting"


async def test_stop_when_done_drains_root_pipelines_only() -> None:
    runner = WorkerRunner(handle_sigint=False)
    out: list[int] = []

    async def record(frame: int) -> None:
        out.append(frame)

    pipe = PipelineWorker("pipe", [lambda f: f + 1, record])
    plain = Probe("plain")
    await runner.add_workers(pipe, plain)
    await pipe.queue_frames(range(100))
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(lambda: runner.running)
    await runner.stop_when_done()
    await eventually(lambda: "pipe" in runner.results)
    assert out == list(range(1, 101))
    assert plain.state.value == "running"
    await runner.end()
    await task


async def test_finished_workers_are_pruned_so_names_can_be_reused() -> None:
    runner = WorkerRunner(handle_sigint=False)
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(lambda: runner.running)
    for _ in range(3):
        w = Probe("job", work=0)
        await runner.add_workers(w)
        await eventually(lambda w=w: w.state.final)
        await eventually(lambda: runner.get_worker("job") is None)
        assert "job" not in runner.registry
    await runner.end()
    await task
    assert runner.results["job"].outcome == "finished"


async def test_registry_watch_between_workers() -> None:
    runner = WorkerRunner(handle_sigint=False)
    seen: list[str] = []

    class Waiter(BaseWorker):
        async def main(self) -> None:
            data = await self.registry.wait_for("late")
            seen.append(f"{data.worker_name}@{data.runner}")

    await runner.add_workers(Waiter("waiter"))

    @runner.event_handler("on_ready")
    async def add(r: WorkerRunner) -> None:
        await asyncio.sleep(0.02)
        await r.add_workers(Probe("late", work=0))

    await asyncio.wait_for(runner.run(), 2)
    assert seen == [f"late@{runner.name}"]


async def test_on_ready_fires_once_workers_are_registered() -> None:
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(Probe("a"), Probe("b"))
    snapshot: list[list[str]] = []

    @runner.event_handler("on_ready")
    async def ready(r: WorkerRunner) -> None:
        snapshot.append(sorted(r.registry.local_workers))
        await r.end()

    await runner.run()
    assert snapshot == [["a", "b"]]


async def test_signal_handlers_are_restored_after_run() -> None:
    def mine(signum: int, frame: object) -> None:
        pass

    previous_int = signal.signal(signal.SIGINT, mine)
    previous_term = signal.signal(signal.SIGTERM, mine)
    try:
        runner = WorkerRunner(handle_sigint=True, handle_sigterm=True)
        await runner.add_workers(Probe("w", work=0))
        await runner.run()
        assert signal.getsignal(signal.SIGINT) is mine
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)


async def test_force_gc_collects(caplog: pytest.LogCaptureFixture) -> None:
    runner = WorkerRunner(handle_sigint=False, force_gc=True)
    with caplog.at_level(logging.DEBUG, logger="runnerconf.workers.runner"):
        await runner.run()
    assert "gc collected" in caplog.text


async def test_run_twice_and_wrong_loop_are_errors() -> None:
    runner = WorkerRunner(handle_sigint=False)
    await runner.run()
    with pytest.raises(RuntimeError, match="already run"):
        await runner.run()
    other = asyncio.new_event_loop()
    try:
        with pytest.warns(DeprecationWarning, match="`loop` is deprecated since 1.5.0"):
            bound = WorkerRunner(handle_sigint=False, loop=other)
        with pytest.raises(RuntimeError, match="another event loop"):
            await bound.run()
    finally:
        other.close()


async def test_shared_bus_is_not_stopped_by_the_runner() -> None:
    bus = AsyncQueueBus()
    await bus.start()
    runner = WorkerRunner(handle_sigint=False, bus=bus)
    await runner.run()
    assert bus.running
    await bus.stop()


async def test_end_message_to_a_finished_worker_is_harmless() -> None:
    runner = WorkerRunner(handle_sigint=False)
    w = Probe("w", work=0)
    await runner.add_workers(w, Probe("keep"))
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(lambda: "w" in runner.results)
    await runner.bus.send(BusEndWorkerMessage(source="x", target="w"))
    await runner.end()
    await task
    assert runner.summary()["finished"] == 2


def test_pipeline_runner_is_a_deprecated_worker_runner() -> None:
    from runnerconf.pipeline import runner as legacy

    assert legacy.WorkerRunner is WorkerRunner
    with pytest.warns(DeprecationWarning, match="WorkerRunner"):
        r = legacy.PipelineRunner(name="old", handle_sigint=False)
    assert isinstance(r, WorkerRunner) and r.name == "old"
    with pytest.warns(DeprecationWarning, match="WorkerRunner"):

        class Mine(legacy.PipelineRunner):
            pass

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Mine(handle_sigint=False)  # a subclass instance warns only at class definition


def test_results_made_the_quick_way_are_the_dataclass() -> None:
    from dataclasses import FrozenInstanceError, asdict

    from runnerconf.workers.outcomes import WorkerResult, result_of

    error = ValueError("x")
    quick, plain = result_of("w", "failed", 1.5, False, error, 3), WorkerResult("w", "failed", 1.5, False, error, 3)
    assert quick == plain and repr(quick) == repr(plain) and asdict(quick).keys() == asdict(plain).keys()
    assert result_of("w", "finished", 0.0, True) == WorkerResult("w", "finished", 0.0, True)
    with pytest.raises(FrozenInstanceError):
        quick.outcome = "finished"  # type: ignore[misc]
