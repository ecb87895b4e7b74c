"""The in-process bus, the default."""

from __future__ import annotations

from runnerconf.bus.base import WorkerBus
from runnerconf.bus.messages import BusMessage

__all__ = ["AsyncQueueBus"]


class AsyncQueueBus(WorkerBus):
    """In-process bus: publishing is local delivery.

    ``send()`` never blocks and never yields to the event loop, so a burst of sends is fully queued
    before any handler runs.
    """

    async def publish(self, message: BusMessage) -> None:
        self.deliver(message)
