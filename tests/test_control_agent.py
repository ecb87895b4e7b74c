"""The control agent against a hostile peer: a flood of status requests gets a bounded number of
answers (each answer lists every worker: a flood must not become a bigger flood)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from runnerconf.bus import BusMessage
from runnerconf.config.build import build_topology
from runnerconf.config.loader import load_topology
from runnerconf.control.controller import Controller
from runnerconf.control.remote import MAX_REQUESTS_PER_SECOND, BusStatusReplyMessage, BusStatusRequestMessage, ControlAgent

TOPOLOGY = "runner: {name: r, auto_end: false}\nworkers:\n" + "".join(
    f"  - {{name: w{i}, class: 'runnerconf.workers.base_worker:BaseWorker'}}\n" for i in range(50)
)


class Collector:
    name = "asker"

    def __init__(self) -> None:
        self.replies: list[BusMessage] = []

    async def on_bus_message(self, message: BusMessage) -> None:
        if isinstance(message, BusStatusReplyMessage):
            self.replies.append(message)


async def test_a_flood_of_status_requests_gets_bounded_answers(caplog: pytest.LogCaptureFixture) -> None:
    topology = load_topology(TOPOLOGY, environ={})
    launch = await build_topology(topology)
    runner = launch.target
    agent = ControlAgent(Controller(launch, topology), "<memory>")
    await agent.attach(runner.bus)
    collector = Collector()
    await runner.bus.subscribe(collector)
    task = asyncio.ensure_future(launch.run())
    try:
        while len(runner.registry) < 50:
            await asyncio.sleep(0.01)
        for _ in range(1000):
            await runner.bus.send(BusStatusRequestMessage(source="asker", target="@runners"))
        await asyncio.sleep(0.3)
        assert 1 <= len(collector.replies) <= MAX_REQUESTS_PER_SECOND
        assert len(collector.replies[0].status["workers"]) == 50
        caplog.set_level(logging.WARNING, logger="runnerconf.control")
        await asyncio.sleep(1.0)
        await runner.bus.send(BusStatusRequestMessage(source="asker", target="@runners"))  # a new second: answered
        await asyncio.sleep(0.1)
        assert len(collector.replies) <= MAX_REQUESTS_PER_SECOND + 1
        assert any("dropped in the last second" in r.getMessage() for r in caplog.records)
    finally:
        await launch.end()
        await task
