"""``AsyncQueueBus``: the in-process bus, the default."""

from __future__ import annotations

from runnerconf.bus.bus import _NO_QUEUE, WorkerBus
from runnerconf.bus.messages import BusMessage

__all__ = ["AsyncQueueBus"]


class AsyncQueueBus(WorkerBus):
    """In-process bus: publishing is local delivery.

    ``send()`` does not yield to the event loop until a subscriber's queue is full (then it waits
    for room), so a burst of sends is queued before any handler runs.
    """

    async def send(self, message: BusMessage) -> None:
        # Publishing is delivery here: one coroutine per message instead of two (send, publish),
        # and a broadcast data message -- the hot path of a fan-out -- is queued right here, as
        # WorkerBus.deliver would (its loop, inlined: the call is a fifth of a send's time).
        # Anything else goes through deliver.
        self.sent += 1
        if message.target is None and not message.system:
            full = None
            for subscription in self._subscriptions.values():
                data = subscription.data
                if data is _NO_QUEUE or (subscription.task is None and subscription.waiter is None):
                    over = subscription.push(message)
                else:
                    data.append(message)
                    over = len(data) > subscription.bound
                    waiter = subscription.waiter
                    if waiter is not None:
                        subscription.waiter = None
                        if not waiter.done():
                            waiter.set_result(None)
                if over:
                    full = [subscription] if full is None else [*full, subscription]
        else:
            full = self.deliver(message)
        if full:
            await self.wait_for_room(full)

    async def publish(self, message: BusMessage) -> None:
        full = self.deliver(message)
        if full:
            await self.wait_for_room(full)
