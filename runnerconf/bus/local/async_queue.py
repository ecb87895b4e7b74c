"""``AsyncQueueBus``: the in-process bus, the default."""

from __future__ import annotations

from runnerconf.bus.bus import WorkerBus
from runnerconf.bus.messages import BusMessage

__all__ = ["AsyncQueueBus"]


class AsyncQueueBus(WorkerBus):
    """In-process bus: publishing is local delivery.

    ``send()`` does not yield to the event loop until a subscriber's queue is full (then it waits
    for room), so a burst of sends is queued before any handler runs.
    """

    async def send(self, message: BusMessage) -> None:
        # Publishing is delivery here: one coroutine per message instead of two (send, publish).
        self.sent += 1
        full = self.deliver(message)
        if full:
            await self.wait_for_room(full)

    async def publish(self, message: BusMessage) -> None:
        full = self.deliver(message)
        if full:
            await self.wait_for_room(full)
