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
    await bus.subscribe(a)
    await bus.subscribe(b)
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
    await bus.subscribe(a)
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
    await bus.subscribe(slow)
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
    await bus.subscribe(slow)
    await bus.subscribe(fast)
    await bus.start()
    await bus.send(BusDataMessage(source="x", payload="hi"))
    await settle(bus, fast, count=1)
    assert slow.got == []
    await bus.stop()


async def test_handler_exception_is_logged_and_delivery_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    bus = AsyncQueueBus()
    a, b = Recorder("a", fail_on=1), Recorder("b", fail_on=1)
    await bus.subscribe(a)
    await bus.subscribe(b)
    await bus.start()
    with caplog.at_level(logging.ERROR, logger="runnerconf.bus.bus"):
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
    await bus.subscribe(a)
    await bus.subscribe(a)
    with pytest.raises(ValueError, match="already subscribed"):
        await bus.subscribe(Recorder("a"))
    await bus.start()
    await bus.send(BusDataMessage(source="x", payload=1))
    await settle(bus, a, count=1)
    await asyncio.sleep(0.01)
    assert len(a.got) == 1
    await bus.stop()


async def test_stop_drops_queued_messages_and_restart_does_not_replay(caplog: pytest.LogCaptureFixture) -> None:
    bus = AsyncQueueBus()
    a = Recorder("a")
    await bus.subscribe(a)
    await bus.start()
    await bus.stop()
    await bus.send(BusDataMessage(source="x", payload="while stopped"))
    await bus.start()
    await settle(bus, a, count=1)
    # A message still queued at stop() is dropped, not replayed by the next start().
    slow = Recorder("slow", delay=0.05)
    await bus.subscribe(slow)
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
            await bus.unsubscribe(self)

    await bus.subscribe(Quitter())
    await bus.start()
    await bus.send(BusDataMessage(source="x", target="q"))
    await bus.send(BusDataMessage(source="x", target="q"))
    await asyncio.sleep(0.01)
    assert Quitter.seen == 1
    assert not bus.is_subscribed("q")
    await bus.stop()


async def test_a_slow_subscriber_holds_back_the_sender_and_loses_nothing() -> None:
    """Bounded queues: 50,000 messages to a slow subscriber never queue more than the bound."""
    bus = AsyncQueueBus(max_queued=100)
    seen: list[int] = []
    peak = 0

    class Slow:
        name = "slow"

        async def on_bus_message(self, message: BusMessage) -> None:
            nonlocal peak
            peak = max(peak, bus.queued()["slow"])
            seen.append(message.payload)  # type: ignore[attr-defined]
            if len(seen) % 100 == 0:
                await asyncio.sleep(0)

    await bus.subscribe(Slow())
    await bus.start()
    for i in range(50_000):
        await bus.send(BusDataMessage(source="x", target="slow", payload=i))
        peak = max(peak, bus.queued()["slow"])
    await asyncio.wait_for(_until(lambda: len(seen) == 50_000), 20)
    assert seen == list(range(50_000))
    assert peak <= 101  # the bound, plus the one message a waiting sender has queued
    await bus.stop()


async def test_system_messages_and_sends_to_oneself_are_never_held_back() -> None:
    bus = AsyncQueueBus(max_queued=2)
    got: list[object] = []

    class Echo:
        name = "echo"

        async def on_bus_message(self, message: BusMessage) -> None:
            got.append(message.payload if isinstance(message, BusDataMessage) else "system")  # type: ignore[attr-defined]
            if message.payload == 0:  # type: ignore[attr-defined]
                for i in range(1, 10):  # its own queue fills: it must not wait for itself
                    await bus.send(BusDataMessage(source="echo", target="echo", payload=i))

    await bus.subscribe(Echo())
    # Not started: nothing is drained, yet system messages queue past the bound without waiting.
    for _ in range(10):
        await asyncio.wait_for(bus.send(BusSystemMessage(source="x", target="echo")), 1)
    await bus.start()
    await bus.send(BusDataMessage(source="x", target="echo", payload=0))
    await asyncio.wait_for(_until(lambda: len(got) == 20), 5)
    assert got[:10] == ["system"] * 10 and got[10:] == list(range(10))
    await bus.stop()


async def test_a_sender_waiting_for_room_is_released_when_the_subscriber_goes() -> None:
    bus = AsyncQueueBus(max_queued=1)

    class Stuck:
        name = "stuck"

        async def on_bus_message(self, message: BusMessage) -> None:
            await asyncio.sleep(3600)

    await bus.subscribe(Stuck())
    await bus.start()
    await bus.send(BusDataMessage(source="x", target="stuck", payload=1))
    await asyncio.sleep(0.01)
    await bus.send(BusDataMessage(source="x", target="stuck", payload=2))
    sender = asyncio.ensure_future(bus.send(BusDataMessage(source="x", target="stuck", payload=3)))
    await asyncio.sleep(0.01)
    assert not sender.done()  # held back
    await bus.unsubscribe("stuck")
    await asyncio.wait_for(sender, 1)
    await bus.stop()


async def _until(check: object) -> None:
    while not check():  # type: ignore[operator]
        await asyncio.sleep(0.001)


async def test_the_delivered_count_is_exact_once_subscribers_are_idle() -> None:
    class Picky:
        name = "picky"

        def __init__(self) -> None:
            self.got: list[object] = []

        def accepts_bus_message(self, message: BusMessage) -> bool:
            return getattr(message, "payload", 0) % 2 == 0

        async def on_bus_message(self, message: BusMessage) -> None:
            self.got.append(getattr(message, "payload", None))

    bus = AsyncQueueBus()
    picky = Picky()
    await bus.subscribe(picky)
    await bus.start()
    try:
        for i in range(1000):  # several bursts (the count is kept per burst, then added)
            await bus.send(BusDataMessage(source="x", payload=i))
        for _ in range(50):
            await asyncio.sleep(0)
        assert len(picky.got) == 500
        assert bus.sent == 1000 and bus.delivered == 500  # refused ones are not delivered
    finally:
        await bus.stop()
