"""Processors and workers for the example topologies."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from runnerconf.bus import BusDataMessage, BusMessage
from runnerconf.workers.base_worker import BaseWorker


def normalise(text: str) -> str | None:
    """Trim and lower-case a text frame; drop empty ones."""
    text = text.strip().lower()
    return text or None


async def reply(text: str, *, greeting: str = "hello") -> str:
    """Answer a text frame (async, as a real bot's reply would be)."""
    await asyncio.sleep(0)
    return f"{greeting}, {text}!"


class Shout:
    """A processor with state: upper-cases frames and counts them."""

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix
        self.count = 0

    def __call__(self, text: str) -> str:
        self.count += 1
        return f"{text.upper()}{self.suffix}"


class Printer(BaseWorker):
    """Prints every data message it receives, with a prefix."""

    def __init__(self, name: str | None = None, *, prefix: str = "", stream: Any = None) -> None:
        super().__init__(name)
        self.prefix = prefix
        self.stream = stream
        self.printed: list[Any] = []

    async def on_bus_message(self, message: BusMessage) -> None:
        if isinstance(message, BusDataMessage) and type(message) is BusDataMessage:
            self.printed.append(message.payload)
            print(f"{self.prefix}{message.payload}", file=self.stream or sys.stdout, flush=True)


class Planner(BaseWorker):
    """Pretends to plan with a model: tells ``report_to`` which model it uses, then waits."""

    def __init__(self, name: str | None = None, *, model: str, report_to: str | None = None) -> None:
        super().__init__(name)
        self.model = model
        self.report_to = report_to

    async def on_start(self) -> None:
        if self.report_to is not None:
            await self.send(self.report_to, f"planner ready with model {self.model}")


async def make_planner(model: str = "small", report_to: str | None = None) -> Planner:
    """An async factory, as factories that open connections are."""
    await asyncio.sleep(0)
    return Planner(model=model, report_to=report_to)
