"""AsyncQueueBus: targeting, priority, order, isolation, start/stop."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import pytest

from runnerconf.bus import (
    AsyncQueueBus,
    BusCancelWorkerMessage,
    BusDataMessage,
    BusMessage,
    BusSystemMessage,
)


@dataclass
class Recorder:
    name: str
    delay: float = 0.0
    fail_on: object = None

    def __post_init__(self) -> None:
        self.got: list[BusMessage] = []
        self.active = 0
        self.max_active = 0

    async def on_bus_message(self, message: BusMessage) -> None:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            self.got.append(message)
            if self.fail_on is not None and getattr(message, "payload", None) == self.fail_on:
                raise RuntimeError("handler failure")
        finally:
            self.active -= 1


async def settle(bus: AsyncQueueBus, *subs: Recorder, count: int) -> None:
    async def wait() -> None:
        while sum(len(s.got) for s in subs) < count:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(wait(), 5)


async def test_targeted_message_reaches_only_its_target() -> None:
    bus = AsyncQueueBus()
    a, b = Recorder("a"), Recorder("b")
    bus.subscribe(a)
    bus.subscribe(b)
    await bus.start()
    await bus.send(BusDataMessage(source="x", target="b", payload=1))
    await bus.send(BusDataMessage(source="x", payload=2))
    await settle(bus, a, b, count=3)
    assert [m.payload for m in a.got] == [2]
    assert [m.payload for m in b.got] == [1, 2]
    await bus.stop()


async def test_system_messages_overtake_queued_data_and_order_holds_within_class() -> None:
    bus = AsyncQueueBus()
    a = Recorder("a")
    bus.subscribe(a)
    # Queued before start: the whole burst is in the queues before any handler runs.
    for i in range(5):
        await bus.send(BusDataMessage(source="x", target="a", payload=i))
    await bus.send(BusCancelWorkerMessage(source="x", target="a", reason="first"))
    await bus.send(BusCancelWorkerMessage(source="x", target="a", reason="second"))
    await bus.start()
    await settle(bus, a, count=7)
    kinds = [type(m).__name__ for m in a.got]
    assert kinds[:2] == ["BusCancelWorkerMessage", "BusCancelWorkerMessage"]
    assert [m.reason for m in a.got[:2]] == ["first", "second"]  # type: ignore[attr-defined]
    assert [m.payload for m in a.got[2:]] == [0, 1, 2, 3, 4]  # type: ignore[attr-defined]
    await bus.stop()


async def test_send_never_yields_and_handlers_of_one_subscriber_never_overlap() -> None:
    bus = AsyncQueueBus()
    slow = Recorder("slow", delay=0.001)
    bus.subscribe(slow)
    await bus.start()
    for i in range(20):
        await bus.send(BusDataMessage(source="x", target="slow", payload=i))
        await bus.send(BusSystemMessage(source="x", target="slow"))
    assert slow.got == []  # nothing ran during the burst
    await settle(bus, slow, count=40)
    assert slow.max_active == 1
    await bus.stop()


async def test_slow_subscriber_does_not_delay_others() -> None:
    bus = AsyncQueueBus()
    slow, fast = Recorder("slow", delay=10), Recorder("fast")
    bus.subscribe(slow)
    bus.subscribe(fast)
    await bus.start()
    await bus.send(BusDataMessage(source="x", payload="hi"))
    await settle(bus, fast, count=1)
    assert slow.got == []
    await bus.stop()


async def test_handler_exception_is_logged_and_delivery_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    bus = AsyncQueueBus()
    a, b = Recorder("a", fail_on=1), Recorder("b", fail_on=1)
    bus.subscribe(a)
    bus.subscribe(b)
    await bus.start()
    with caplog.at_level(logging.ERROR, logger="runnerconf.bus.base"):
        for i in range(3):
            await bus.send(BusDataMessage(source="x", payload=i))
        await settle(bus, a, b, count=6)
    assert [m.payload for m in a.got] == [0, 1, 2]
    assert [m.payload for m in b.got] == [0, 1, 2]
    assert sum("failed handling" in r.message for r in caplog.records) == 2
    await bus.stop()


async def test_duplicate_subscriber_name_is_refused_same_object_is_idempotent() -> None:
    bus = AsyncQueueBus()
    a = Recorder("a")
    bus.subscribe(a)
    bus.subscribe(a)
    with pytest.raises(ValueError, match="already subscribed"):
        bus.subscribe(Recorder("a"))
    await bus.start()
    await bus.send(BusDataMessage(source="x", payload=1))
    await settle(bus, a, count=1)
    await asyncio.sleep(0.01)
    assert len(a.got) == 1
    await bus.stop()


async def test_stop_drops_queued_messages_and_restart_does_not_replay(caplog: pytest.LogCaptureFixture) -> None:
    bus = AsyncQueueBus()
    a = Recorder("a")
    bus.subscribe(a)
    await bus.start()
    await bus.stop()
    await bus.send(BusDataMessage(source="x", payload="while stopped"))
    await bus.start()
    await settle(bus, a, count=1)
    # A message still queued at stop() is dropped, not replayed by the next start().
    slow = Recorder("slow", delay=0.05)
    bus.subscribe(slow)
    await bus.send(BusDataMessage(source="x", target="slow", payload=1))
    await bus.send(BusDataMessage(source="x", target="slow", payload=2))
    await asyncio.sleep(0.01)
    with caplog.at_level(logging.WARNING):
        await bus.stop()
    assert "1 undelivered" in caplog.text
    await bus.start()
    await asyncio.sleep(0.1)
    assert slow.got == []  # the in-flight one was cancelled with the dispatcher, the queued one dropped
    assert [m.payload for m in a.got] == ["while stopped"]
    await bus.stop()


async def test_unsubscribe_from_own_handler_is_safe() -> None:
    bus = AsyncQueueBus()

    class Quitter:
        name = "q"
        seen = 0

        async def on_bus_message(self, message: BusMessage) -> None:
            Quitter.seen += 1
            bus.unsubscribe(self)

    bus.subscribe(Quitter())
    await bus.start()
    await bus.send(BusDataMessage(source="x", target="q"))
    await bus.send(BusDataMessage(source="x", target="q"))
    await asyncio.sleep(0.01)
    assert Quitter.seen == 1
    assert not bus.is_subscribed("q")
    await bus.stop()
