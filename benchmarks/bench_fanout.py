"""Bus fan-out: N messages sent through AsyncQueueBus to S subscribers, until every subscriber
has handled every message, next to the floor measured in the same run: the least a bus with the
same API can do -- an awaited ``send`` coroutine that appends the message to a deque per
subscriber, and per subscriber one consumer task that awaits the same handler for each message
(woken by a future when its deque runs empty).

    python benchmarks/bench_fanout.py [--messages 100000] [--repeat 5]

Best of --repeat runs for each figure; the ratio is bus time / floor time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections import deque

from runnerconf.bus import AsyncQueueBus, BusDataMessage, BusMessage


class Counter:
    def __init__(self, name: str, expected: int, done: asyncio.Event, remaining: list[int]) -> None:
        self.name = name
        self.count = 0
        self.expected = expected
        self.done = done
        self.remaining = remaining

    async def on_bus_message(self, message: BusMessage) -> None:
        self.count += 1
        if self.count == self.expected:
            self.remaining[0] -= 1
            if not self.remaining[0]:
                self.done.set()


async def floor(n: int, subscribers: int) -> float:
    loop = asyncio.get_running_loop()
    messages = [BusDataMessage(source="bench", payload=i) for i in range(n)]
    done = asyncio.Event()
    remaining = [subscribers]
    counters = [Counter(f"s{i}", n, done, remaining) for i in range(subscribers)]
    queues: list[deque[BusMessage]] = [deque() for _ in range(subscribers)]
    waiters: list[asyncio.Future[None] | None] = [None] * subscribers

    async def consume(i: int) -> None:
        q, handler = queues[i], counters[i].on_bus_message
        for _ in range(n):
            while not q:
                waiters[i] = loop.create_future()
                await waiters[i]
            await handler(q.popleft())

    async def send(m: BusMessage) -> None:
        for i, q in enumerate(queues):
            q.append(m)
            w = waiters[i]
            if w is not None and not w.done():
                w.set_result(None)

    tasks = [asyncio.ensure_future(consume(i)) for i in range(subscribers)]
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    for m in messages:
        await send(m)
    await done.wait()
    elapsed = time.perf_counter() - t0
    await asyncio.gather(*tasks)
    return elapsed


async def bus(n: int, subscribers: int) -> float:
    messages = [BusDataMessage(source="bench", payload=i) for i in range(n)]
    b = AsyncQueueBus(max_queued=n + 1)
    done = asyncio.Event()
    remaining = [subscribers]
    for i in range(subscribers):
        await b.subscribe(Counter(f"s{i}", n, done, remaining))
    await b.start()
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    for m in messages:
        await b.send(m)
    await done.wait()
    elapsed = time.perf_counter() - t0
    await b.stop()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(f"bus fan-out, {args.messages:,} messages (best of {args.repeat}); floor = deque + awaited-handler consumer")
    print(f"{'subscribers':>11} {'floor msg/s':>14} {'bus msg/s':>14} {'bus/floor time':>15}")
    for subs in (1, 10):
        f = min(asyncio.run(floor(args.messages, subs)) for _ in range(args.repeat))
        t = min(asyncio.run(bus(args.messages, subs)) for _ in range(args.repeat))
        deliveries = args.messages * subs
        print(f"{subs:>11} {deliveries / f:>14,.0f} {deliveries / t:>14,.0f} {t / f:>14.2f}x   (target <= 1.3x)")


if __name__ == "__main__":
    main()
