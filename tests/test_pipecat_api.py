"""Pipecat's worker API on runnerconf's runtime: names, signatures and semantics.

Where pipecat-ai is installed (the test extra installs it), the signatures are compared with the
real ones, parameter by parameter: runnerconf may only add keyword parameters with defaults.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import pytest

from tests.conftest import require_pipecat

from runnerconf.bus import (
    AsyncQueueBus,
    BusAddWorkerMessage,
    BusDataMessage,
    BusEndWorkerMessage,
    BusJobRequestMessage,
    BusMessage,
    BusSubscriber,
)
from runnerconf.pipeline.job_context import JobError, JobEvent, JobGroupError, JobGroupParams, JobParams, JobStatus
from runnerconf.pipeline.job_decorator import job
from runnerconf.pipeline.worker_ready_decorator import worker_ready
from runnerconf.registry import WorkerRegistry
from runnerconf.registry.types import WorkerErrorData, WorkerReadyData
from runnerconf.utils.asyncio.task_manager import TaskManager
from runnerconf.workers.base_worker import BaseWorker, WorkerActivationArgs, WorkerParams
from runnerconf.workers.runner import WorkerRunner

from .helpers import eventually


# -- signatures --------------------------------------------------------------------------------

PAIRS = [
    ("runnerconf.workers.base_worker:BaseWorker", "pipecat.workers.base_worker:BaseWorker"),
    ("runnerconf.workers.runner:WorkerRunner", "pipecat.workers.runner:WorkerRunner"),
    ("runnerconf.bus:WorkerBus", "pipecat.bus:WorkerBus"),
    ("runnerconf.registry:WorkerRegistry", "pipecat.registry:WorkerRegistry"),
    ("runnerconf.utils.asyncio.task_manager:TaskManager", "pipecat.utils.asyncio.task_manager:TaskManager"),
    ("runnerconf.bus.network.redis:RedisBus", "pipecat.bus.network.redis:RedisBus"),
]


def _load(path: str) -> Any:
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _compatible(ours: inspect.Signature, theirs: inspect.Signature, where: str) -> list[str]:
    """Every pipecat parameter is ours, same kind and default; ours adds only defaulted keywords."""
    problems = []
    mine = ours.parameters
    for name, param in theirs.parameters.items():
        if param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        got = mine.get(name)
        if got is None:
            problems.append(f"{where}: no parameter {name!r}")
        elif got.kind != param.kind and not (got.kind == param.POSITIONAL_OR_KEYWORD and param.kind == param.KEYWORD_ONLY):
            problems.append(f"{where}: {name!r} is {got.kind.description}, pipecat's is {param.kind.description}")
        elif param.default is not param.empty and got.default != param.default:
            problems.append(f"{where}: {name!r} defaults to {got.default!r}, pipecat's to {param.default!r}")
    for name, param in mine.items():
        if name not in theirs.parameters and param.kind not in (param.VAR_KEYWORD,) and param.default is param.empty:
            problems.append(f"{where}: extra required parameter {name!r}")
    return problems


@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
def test_signatures_match_pipecat(ours: str, theirs: str) -> None:
    require_pipecat()
    if "redis" in theirs:
        pytest.importorskip("redis", reason="redis-py is not installed")
    mine, real = _load(ours), _load(theirs)
    problems = _compatible(inspect.signature(mine), inspect.signature(real), f"{theirs}()")
    public = [n for n, v in vars(real).items() if not n.startswith("_") and callable(v)]
    for name in public:
        if not hasattr(mine, name):
            problems.append(f"{theirs}.{name} is missing")
            continue
        try:
            problems += _compatible(inspect.signature(getattr(mine, name)), inspect.signature(getattr(real, name)), f"{theirs}.{name}")
        except (TypeError, ValueError):
            pass
    for prop in [n for n, v in vars(real).items() if isinstance(v, property)]:
        if not isinstance(inspect.getattr_static(mine, prop, None), property):
            problems.append(f"{theirs}.{prop} is not a property here")
    assert problems == []


def test_message_classes_and_fields_match_pipecat() -> None:
    require_pipecat()
    import dataclasses

    import pipecat.bus as theirs

    import runnerconf.bus as ours

    for name in theirs.__all__:
        real = getattr(theirs, name)
        if not (isinstance(real, type) and dataclasses.is_dataclass(real)) or name == "BusBridgeProcessor":
            continue
        mine = getattr(ours, name)
        fields = {f.name for f in dataclasses.fields(mine)}
        missing = {f.name for f in dataclasses.fields(real)} - fields - {"name"}  # ``name`` is a property here
        assert not missing, f"{name} lacks {missing}"
        assert hasattr(mine(**_required(mine)), "name")


def _required(cls: type) -> dict[str, Any]:
    import dataclasses

    return {
        f.name: "x"
        for f in dataclasses.fields(cls)
        if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }


# -- the worker surface ------------------------------------------------------------------------


async def test_properties_before_attach_and_defaults() -> None:
    worker = BaseWorker()
    assert worker.name.startswith("BaseWorker#")
    for prop in ("worker_runner", "bus", "registry"):
        with pytest.raises(RuntimeError):
            getattr(worker, prop)
    assert (worker.parent, worker.children, worker.active, worker.started_at, worker.bridged) == (None, [], True, None, False)
    assert worker.activation_args is None and worker.active_jobs == {} and worker.job_groups == {}
    assert isinstance(worker, BusSubscriber)


async def test_attach_run_start_stop_wait_without_a_runner_loop() -> None:
    """A worker driven by hand, as pipecat's own tests drive theirs."""
    bus, registry = AsyncQueueBus(), WorkerRegistry(runner_name="r")
    tm = TaskManager()
    await bus.setup(tm)
    runner = WorkerRunner(bus=bus, handle_sigint=False)
    worker = BaseWorker("w")
    await worker.attach(registry=registry, bus=bus, worker_runner=runner)
    assert bus.is_subscribed("w") and worker.worker_runner is runner
    task = asyncio.ensure_future(worker.run(WorkerParams(task_manager=tm)))
    await eventually(lambda: worker.started_at is not None)
    await worker.stop()  # a bus-only worker finishes when stopped
    await asyncio.wait_for(task, 2)
    assert worker.state.value == "finished"


async def test_children_are_announced_watched_and_ended_by_their_parent(caplog: pytest.LogCaptureFixture) -> None:
    ready: list[str] = []
    sent: list[BusMessage] = []

    class Parent(BaseWorker):
        async def on_start(self) -> None:
            await self.add_workers(BaseWorker("kid"))  # while running: announced on the bus

        async def on_worker_ready(self, data: WorkerReadyData) -> None:
            ready.append(f"{data.worker_name}@{data.runner}")

    runner = WorkerRunner(name="r", handle_sigint=False)
    original = runner.bus.send

    async def capture(message: BusMessage) -> None:
        sent.append(message)
        await original(message)

    runner.bus.send = capture  # type: ignore[method-assign]
    parent = Parent("parent")
    await runner.add_workers(parent)
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(lambda: ready == ["kid@r"])
    kid = runner.get_worker("kid")
    assert kid is not None and kid.parent == "parent" and parent.children == [kid]
    assert any(isinstance(m, BusAddWorkerMessage) and m.worker is kid and m.target == "r" for m in sent)
    with caplog.at_level(logging.WARNING):
        await parent.add_workers(kid)  # already has a parent: skipped with a warning
    assert "already has parent" in caplog.text
    await runner.end("bye")
    await asyncio.wait_for(task, 2)
    assert kid.end_reason == "bye" and parent.children == []  # a finished child is forgotten


async def test_end_and_cancel_ask_every_runner_and_take_a_keyword_reason() -> None:
    class Quitter(BaseWorker):
        async def main(self) -> None:
            await self.end(reason="done here")
            await self.wait_for_stop()

    runner = WorkerRunner(handle_sigint=False)
    other = BaseWorker("other")
    await runner.add_workers(Quitter("q"), other)
    await asyncio.wait_for(runner.run(auto_end=False), 2)
    assert other.end_reason == "done here"
    with pytest.raises(TypeError):
        await BaseWorker("x").end("positional")  # type: ignore[misc]

    class Canceller(BaseWorker):
        async def main(self) -> None:
            await self.cancel(reason="abort")
            await asyncio.sleep(3600)

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(Canceller("c"))
    await asyncio.wait_for(runner.run(auto_end=False), 2)
    assert runner.cancelled and runner.results["c"].outcome == "cancelled"


async def test_on_bus_message_dispatches_then_fires_its_event_lifecycle_never_reaches_it() -> None:
    seen: list[str] = []

    class Mine(BaseWorker):
        async def on_activated(self, args: dict[str, Any] | None) -> None:
            seen.append(f"activated:{args}")

        async def on_bus_message(self, message: BusMessage) -> None:
            await super().on_bus_message(message)
            seen.append(type(message).__name__)

    runner = WorkerRunner(handle_sigint=False)
    mine = Mine("mine")
    events: list[str] = []
    mine.add_event_handler("on_bus_message", lambda w, m: events.append(type(m).__name__))
    await runner.add_workers(mine)
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(lambda: mine.ready)
    await runner.bus.send(BusDataMessage(source="x", target="mine", payload=1))
    await eventually(lambda: "BusDataMessage" in seen)
    await runner.end("bye")
    await asyncio.wait_for(task, 2)
    # Activation at start (a worker created active), the data message; end never reached it.
    assert seen == ["activated:None", "BusDataMessage"]
    assert events == ["BusDataMessage"]


async def test_activation_and_hand_over() -> None:
    log: list[str] = []

    class Agent(BaseWorker):
        async def on_activated(self, args: dict[str, Any] | None) -> None:
            log.append(f"{self.name} on {args}")

        async def on_deactivated(self) -> None:
            log.append(f"{self.name} off")

        async def on_bus_message(self, message: BusMessage) -> None:
            await super().on_bus_message(message)
            if type(message) is BusDataMessage:
                log.append(f"{self.name} got {message.payload}")
                if message.payload == "hand over":
                    await self.activate_worker("b", args=WorkerActivationArgs(metadata={"why": "asked"}), deactivate_self=True)
                    assert not self.active  # at once, before the bus round trip

    runner = WorkerRunner(handle_sigint=False)
    a, b = Agent("a"), Agent("b", active=False)
    await runner.add_workers(a, b)
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(lambda: a.ready and b.ready)
    await runner.bus.send(BusDataMessage(source="x", payload="first"))
    await runner.bus.send(BusDataMessage(source="x", payload="hand over"))
    await eventually(lambda: b.active)
    await runner.bus.send(BusDataMessage(source="x", payload="second"))
    await eventually(lambda: "b got second" in log)
    assert b.activation_args == {"metadata": {"why": "asked"}}
    await a.deactivate_worker("b")
    await eventually(lambda: not b.active)
    await runner.end("bye")
    await asyncio.wait_for(task, 2)
    assert log == [
        "a on None",
        "a got first",
        "a got hand over",
        "a off",
        "b on {'metadata': {'why': 'asked'}}",
        "b got second",
        "b off",
    ]


async def test_child_errors_reach_the_parent() -> None:
    failures: list[WorkerErrorData] = []

    class Parent(BaseWorker):
        async def on_worker_failed(self, data: WorkerErrorData) -> None:
            failures.append(data)

    class Child(BaseWorker):
        async def on_start(self) -> None:
            await self.send_bus_error_message("camera unplugged")

    runner = WorkerRunner(handle_sigint=False)
    parent = Parent("parent")
    await parent.add_workers(Child("child"))
    await runner.add_workers(parent)
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(lambda: failures)
    await runner.end()
    await task
    assert failures == [WorkerErrorData(worker_name="child", error="camera unplugged")]


async def test_worker_ready_decorator_and_watch_workers() -> None:
    seen: list[str] = []

    class Watcher(BaseWorker):
        @worker_ready(name="late")
        async def on_late(self, data: WorkerReadyData) -> None:
            seen.append(f"decorated:{data.worker_name}")

        async def on_worker_ready(self, data: WorkerReadyData) -> None:
            seen.append(f"hook:{data.worker_name}")

    runner = WorkerRunner(handle_sigint=False)
    watcher = Watcher("watcher")
    await runner.add_workers(watcher)
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(lambda: watcher.ready)
    await runner.add_workers(BaseWorker("late"))
    await eventually(lambda: len(seen) == 2)
    await runner.end()
    await task
    assert seen == ["decorated:late", "hook:late"]
    assert runner.registry.watched() == 0  # watchers leave with their worker


# -- jobs --------------------------------------------------------------------------------------


class Helper(BaseWorker):
    def __init__(self, name: str, *, delay: float = 0.0, fail: bool = False) -> None:
        super().__init__(name)
        self.delay, self.fail = delay, fail
        self.running = 0
        self.peak = 0
        self.cancelled: list[str] = []

    @job(name="square")
    async def square(self, message: BusJobRequestMessage) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.send_job_update(message.job_id, {"half": True})
            await asyncio.sleep(self.delay)
            if self.fail:
                raise ValueError("cannot square that")
            await self.send_job_response(message.job_id, {"value": message.payload["x"] ** 2})  # type: ignore[index]
        finally:
            self.running -= 1

    @job(name="one-by-one", sequential=True)
    async def sequential(self, message: BusJobRequestMessage) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        await self.send_job_response(message.job_id, {})

    async def on_job_request(self, message: BusJobRequestMessage) -> None:
        await self.send_job_stream_start(message.job_id, {"type": "text"})
        for part in ("a", "b"):
            await self.send_job_stream_data(message.job_id, {"part": part})
        await self.send_job_stream_end(message.job_id, {"parts": 2})

    async def on_job_cancelled(self, message: Any) -> None:
        self.cancelled.append(message.job_id)


async def _with_runner(*workers: BaseWorker, body: Any) -> WorkerRunner:
    runner = WorkerRunner(handle_sigint=False, stop_timeout=2, cancel_timeout=1)
    await runner.add_workers(*workers)
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(lambda: all(w.ready for w in workers))
    try:
        await body()
    finally:
        await runner.end("test over")
        await asyncio.wait_for(task, 5)
    return runner


async def test_job_context_updates_response_and_errors() -> None:
    boss, helper, broken = BaseWorker("boss"), Helper("helper"), Helper("broken", fail=True)

    async def body() -> None:
        async with boss.job("helper", params=JobParams(name="square", payload={"x": 7}, timeout=2)) as j:
            events = [e async for e in j]
        assert j.response == {"value": 49}
        assert events == [JobEvent(type=JobEvent.UPDATE, data={"half": True})]
        with pytest.raises(JobError, match="errored"):
            async with boss.job("broken", params=JobParams(name="square", payload={"x": 1}, timeout=2)):
                pass
        async with boss.job("helper", params=JobParams(payload={}, timeout=2)) as s:  # no name: on_job_request streams
            kinds = [e.type async for e in s]
        assert kinds == ["stream_start", "stream_data", "stream_data", "stream_end"] and s.response == {"parts": 2}

    await _with_runner(boss, helper, broken, body=body)


async def test_a_handler_that_raises_answers_error_not_silence() -> None:
    boss, broken = BaseWorker("boss"), Helper("broken", fail=True)
    answers: list[Any] = []
    boss.add_event_handler("on_job_response", lambda w, m: answers.append((m.status, m.response)))

    async def body() -> None:
        await boss.request_job("broken", params=JobParams(name="square", payload={"x": 2}))
        await eventually(lambda: answers)

    await _with_runner(boss, broken, body=body)
    assert answers == [(JobStatus.ERROR, {"error": "ValueError: cannot square that"})]


async def test_job_groups_timeouts_and_cancel_on_error() -> None:
    completed: list[Any] = []

    class Boss(BaseWorker):
        async def on_job_completed(self, result: Any) -> None:
            completed.append(result.responses)

    boss = Boss("boss")
    a, b, slow, bad = Helper("a"), Helper("b"), Helper("slow", delay=10), Helper("bad", fail=True)

    async def body() -> None:
        async with boss.job_group("a", "b", params=JobGroupParams(name="square", payload={"x": 3}, timeout=2)) as g:
            updates = [e.worker_name async for e in g if e.type == "update"]
        assert g.responses == {"a": {"value": 9}, "b": {"value": 9}} and sorted(updates) == ["a", "b"]
        assert completed == [g.responses]
        with pytest.raises(JobGroupError, match="timeout"):
            async with boss.job_group("a", "slow", params=JobGroupParams(name="square", payload={"x": 1}, timeout=0.2)):
                pass
        await eventually(lambda: slow.cancelled)  # the timed-out job was cancelled on the worker
        with pytest.raises(JobGroupError, match="errored"):
            async with boss.job_group("a", "bad", params=JobGroupParams(name="square", payload={"x": 1}, timeout=2)):
                pass
        with pytest.raises(JobGroupError, match="not ready within timeout"):
            await boss.request_job_group("a", "nobody", params=JobGroupParams(timeout=0.05))
        job_id = await boss.request_job_group("a", "b", params=JobGroupParams(name="one-by-one", timeout=2))
        assert isinstance(job_id, str)

    await _with_runner(boss, a, b, slow, bad, body=body)


async def test_sequential_jobs_run_one_at_a_time_others_concurrently() -> None:
    boss, helper = BaseWorker("boss"), Helper("helper", delay=0.05)

    async def body() -> None:
        await asyncio.gather(*(boss.request_job("helper", params=JobParams(name="square", payload={"x": i})) for i in range(4)))
        await eventually(lambda: helper.peak == 4)  # concurrent
        await eventually(lambda: not helper.active_jobs and not helper.running)
        helper.peak = 0
        async with boss.job_group("helper", params=JobGroupParams(name="one-by-one", timeout=2)):
            pass
        ids = [await boss.request_job("helper", params=JobParams(name="one-by-one")) for _ in range(3)]
        await eventually(lambda: not helper.active_jobs)
        assert len(ids) == 3 and helper.peak == 1

    await _with_runner(boss, helper, body=body)


async def test_a_worker_that_stops_answers_its_jobs_cancelled() -> None:
    boss, slow = BaseWorker("boss"), Helper("slow", delay=60)
    answers: list[Any] = []
    boss.add_event_handler("on_job_response", lambda w, m: answers.append(m.status))

    async def body() -> None:
        await boss.request_job("slow", params=JobParams(name="square", payload={"x": 1}))
        await eventually(lambda: slow.running)
        await boss.bus.send(BusEndWorkerMessage(source="test", target="slow", reason="closing"))
        await eventually(lambda: answers)
        assert slow.state.final

    await _with_runner(boss, slow, body=body)
    assert answers == [JobStatus.CANCELLED]


async def test_task_manager_and_dangling_tasks(caplog: pytest.LogCaptureFixture) -> None:
    class Leaky(BaseWorker):
        async def on_start(self) -> None:
            self.create_task(asyncio.sleep(3600), "forgotten")

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(Leaky("leaky"))
    runner.add_event_handler("on_ready", lambda r: r._spawn(r.end(), "end"))
    with caplog.at_level(logging.WARNING):
        await asyncio.wait_for(runner.run(), 2)
    assert "dangling tasks detected" in caplog.text and "leaky::forgotten" in caplog.text
    for t in runner.task_manager.current_tasks():
        await runner.task_manager.cancel_task(t)
    assert runner.task_manager.current_tasks() == []


async def test_pipecat_style_bus_subscriber_gate() -> None:
    bus = AsyncQueueBus()
    got: list[Any] = []

    class Picky(BusSubscriber):
        name = "picky"  # type: ignore[assignment]

        def accepts_bus_message(self, message: BusMessage) -> bool:
            return getattr(message, "payload", None) != "no"

        async def on_bus_message(self, message: BusMessage) -> None:
            got.append(message.payload)  # type: ignore[attr-defined]

    await bus.setup(TaskManager())
    await bus.subscribe(Picky())
    await bus.start()
    for p in ("yes", "no", "yes again"):
        await bus.send(BusDataMessage(source="x", payload=p))
    await eventually(lambda: len(got) == 2)
    assert got == ["yes", "yes again"]
    await bus.unsubscribe(Picky())
    await bus.stop()
