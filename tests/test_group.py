"""Several runners on one in-process bus: registries, depends_on across runners, the group."""

from __future__ import annotations

import asyncio

import pytest

from runnerconf.bus import AsyncQueueBus, BusDataMessage, BusEndMessage, BusMessage
from runnerconf.config import build_runners, load_topology, run_topology
from runnerconf.workers.base_worker import BaseWorker
from runnerconf.workers.group import RunnerGroup
from runnerconf.workers.runner import WorkerRunner

from .helpers import eventually


class Echo(BaseWorker):
    async def on_bus_message(self, message: BusMessage) -> None:
        if type(message) is BusDataMessage:
            await self.send(message.source, f"echo {message.payload}")


class Asker(BaseWorker):
    def __init__(self, name: str, *, to: str) -> None:
        super().__init__(name, depends_on=[to])
        self.to = to
        self.answers: list[object] = []

    async def main(self) -> None:
        await self.send(self.to, "hi")
        await self.wait_for_stop()

    async def on_bus_message(self, message: BusMessage) -> None:
        if type(message) is BusDataMessage:
            self.answers.append(message.payload)


async def test_runners_sharing_a_bus_see_each_other_and_talk() -> None:
    bus = AsyncQueueBus()
    a = WorkerRunner(name="a", bus=bus, handle_sigint=False)
    b = WorkerRunner(name="b", bus=bus, handle_sigint=False)
    asker = Asker("asker", to="echo")
    await a.add_workers(asker)
    await b.add_workers(Echo("echo"))
    group = RunnerGroup([a, b])
    task = asyncio.create_task(group.run(auto_end=False))
    await eventually(lambda: asker.answers == ["echo hi"])
    assert a.registry.get("echo").runner == "b"  # type: ignore[union-attr]
    assert b.registry.get("asker").runner == "a"  # type: ignore[union-attr]
    await group.end("done")
    await task
    assert {n: r.outcome for n, r in group.results.items()} == {"asker": "finished", "echo": "finished"}
    assert not bus.running  # the group started it, the group stopped it


async def test_a_runner_that_leaves_is_forgotten_by_its_peers() -> None:
    bus = AsyncQueueBus()
    await bus.start()
    a = WorkerRunner(name="a", bus=bus, handle_sigint=False)
    b = WorkerRunner(name="b", bus=bus, handle_sigint=False)
    await a.add_workers(BaseWorker("wa"))
    ta = asyncio.create_task(a.run(auto_end=False))
    tb = asyncio.create_task(b.run(auto_end=False))
    await eventually(lambda: "wa" in b.registry)
    await a.end()
    await ta
    await eventually(lambda: "wa" not in b.registry)
    # The same name comes back with other workers: announced again.
    a2 = WorkerRunner(name="a", bus=bus, handle_sigint=False)
    await a2.add_workers(BaseWorker("wa2"))
    ta2 = asyncio.create_task(a2.run(auto_end=False))
    await eventually(lambda: "wa2" in b.registry)
    await a2.end()
    await b.end()
    await asyncio.gather(ta2, tb)
    await bus.stop()


def test_group_needs_a_shared_bus() -> None:
    with pytest.raises(ValueError, match="share one bus"):
        RunnerGroup([WorkerRunner(), WorkerRunner()])
    with pytest.raises(ValueError, match="at least one"):
        RunnerGroup([])


async def test_a_multi_runner_topology_runs_in_one_process() -> None:
    text = """
runners:
  - name: left
    handle_sigint: false
    workers:
      - name: ticker
        class: runnerconf.examples.distributed:Ticker
        params: {to: counter, every: 0.01, count: 3}
        depends_on: [counter]
  - name: right
    handle_sigint: false
    auto_end: false
    workers:
      - {name: counter, class: "runnerconf.examples.distributed:Counter"}
"""
    runners = await build_runners(load_topology(text))
    assert [r.name for r in runners] == ["left", "right"]
    assert runners[0].bus is runners[1].bus
    group = RunnerGroup(runners)
    task = asyncio.create_task(group.run({"left": True, "right": False}))
    await eventually(lambda: "ticker" in group.results)  # left ends by itself after 3 ticks...
    counter = runners[1].get_worker("counter")
    assert counter is not None and counter.ticks == 3  # type: ignore[attr-defined]
    assert not task.done()  # ...right runs until ended, as `down` would end it:
    await runners[0].bus.send(BusEndMessage(source="test", target="right"))
    await task
    assert {n: r.outcome for n, r in group.results.items()} == {"ticker": "finished", "counter": "finished"}


async def test_run_topology_returns_the_group_once_every_runner_has_ended() -> None:
    text = """
runners:
  - name: left
    handle_sigint: false
    workers:
      - {name: first, type: pipeline, processors: ["builtins:repr"], frames: [1], stop_when_done: true}
  - name: right
    handle_sigint: false
    workers:
      - {name: second, type: pipeline, processors: ["builtins:repr"], frames: [2], stop_when_done: true, depends_on: [first]}
"""
    ran = await asyncio.wait_for(run_topology(load_topology(text)), 5)
    assert isinstance(ran, RunnerGroup)
    # `first` may well have finished before `second` looked: having been ready is enough.
    assert {n: r.outcome for n, r in ran.results.items()} == {"first": "finished", "second": "finished"}
