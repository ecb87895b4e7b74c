"""Workers for configs/distributed.yaml: a ticker on one runner, a counter on another."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from runnerconf.bus import BusDataMessage, BusMessage
from runnerconf.workers.base_worker import BaseWorker


class Ticker(BaseWorker):
    """Sends ``{"tick": n}`` to ``to`` every ``every`` seconds (``count`` times, or until stopped)
    and prints the acknowledgements it gets back."""

    def __init__(self, name: str | None = None, *, to: str, every: float = 0.5, count: int | None = None) -> None:
        super().__init__(name)
        self.to, self.every, self.count = to, every, count
        self.acks: list[Any] = []

    async def main(self) -> None:
        n = 0
        while not self.stop_requested and (self.count is None or n < self.count):
            n += 1
            await self.send(self.to, {"tick": n, "runner": self.runner.name})
            try:
                await asyncio.wait_for(self.wait_for_stop(), self.every)
            except TimeoutError:
                pass

    async def on_bus_message(self, message: BusMessage) -> None:
        if type(message) is BusDataMessage:
            self.acks.append(message.payload)
            print(f"{self.name}: {message.source} acknowledged {message.payload}", flush=True)


class Counter(BaseWorker):
    """Counts the ticks it receives, prints them and acknowledges each to its sender."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self.ticks = 0

    async def on_bus_message(self, message: BusMessage) -> None:
        if type(message) is BusDataMessage and isinstance(message.payload, dict):
            self.ticks += 1
            print(f"{self.name}@{self.runner.name}: tick {message.payload.get('tick')} from {message.source}@{message.payload.get('runner')}", file=sys.stdout, flush=True)
            await self.send(message.source, self.ticks)
