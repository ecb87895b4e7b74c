"""Runner and in-process bus figures, each next to a floor measured in the same run.

    python benchmarks/bench_runner.py [--messages 100000] [--repeat 3]

Prints:
* bus fan-out: time to deliver N messages to S subscribers through AsyncQueueBus, against raw
  asyncio.Queue put/get of the same messages to S consumer tasks (the floor), as a ratio;
* lifecycle: time to start K idle workers until on_ready and to end them until run() returns,
  against K raw tasks started and released through an asyncio.Event (the floor), as ratios,
  plus the cost per worker so linearity in K can be read off.

Best of --repeat runs for every figure (shared, noisy machines: the minimum is the steadiest).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

from runnerconf.bus import AsyncQueueBus, BusDataMessage, BusMessage
from runnerconf.workers.base_worker import BaseWorker
from runnerconf.workers.runner import WorkerRunner


class _Counter:
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


async def fanout_floor(n: int, subscribers: int) -> float:
    messages = [BusDataMessage(source="bench", payload=i) for i in range(n)]
    queues: list[asyncio.Queue[BusMessage]] = [asyncio.Queue() for _ in range(subscribers)]
    done = asyncio.Event()
    remaining = [subscribers]
    counters = [_Counter(f"s{i}", n, done, remaining) for i in range(subscribers)]

    async def consume(q: asyncio.Queue[BusMessage], c: _Counter) -> None:
        for _ in range(n):
            await c.on_bus_message(await q.get())

    tasks = [asyncio.create_task(consume(q, c)) for q, c in zip(queues, counters)]
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    for m in messages:
        for q in queues:
            q.put_nowait(m)
    await done.wait()
    elapsed = time.perf_counter() - t0
    await asyncio.gather(*tasks)
    return elapsed


async def fanout_bus(n: int, subscribers: int) -> float:
    messages = [BusDataMessage(source="bench", payload=i) for i in range(n)]
    bus = AsyncQueueBus()
    done = asyncio.Event()
    remaining = [subscribers]
    for i in range(subscribers):
        await bus.subscribe(_Counter(f"s{i}", n, done, remaining))
    await bus.start()
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    for m in messages:
        await bus.send(m)
    await done.wait()
    elapsed = time.perf_counter() - t0
    await bus.stop()
    return elapsed


async def lifecycle_floor(k: int) -> tuple[float, float]:
    release = asyncio.Event()
    started = 0

    async def idle() -> None:
        nonlocal started
        started += 1
        await release.wait()

    t0 = time.perf_counter()
    tasks = [asyncio.create_task(idle()) for _ in range(k)]
    await asyncio.sleep(0)
    t1 = time.perf_counter()
    release.set()
    await asyncio.gather(*tasks)
    return t1 - t0, time.perf_counter() - t1


async def lifecycle_runner(k: int) -> tuple[float, float]:
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(*(BaseWorker(f"w{i}") for i in range(k)))
    marks: list[float] = []

    @runner.event_handler("on_ready")
    async def ready(r: WorkerRunner) -> None:
        marks.append(time.perf_counter())
        assert len(r.registry) == k
        await r.end()

    t0 = time.perf_counter()
    await runner.run()
    t2 = time.perf_counter()
    assert runner.summary()["finished"] == k
    return marks[0] - t0, t2 - marks[0]


def best(fn, *args, repeat: int):  # type: ignore[no-untyped-def]
    results = [asyncio.run(fn(*args)) for _ in range(repeat)]
    if isinstance(results[0], tuple):
        return tuple(min(r[i] for r in results) for i in range(len(results[0])))
    return min(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="*", default=[10, 100, 1_000, 10_000])
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    print(f"bus fan-out, {args.messages:,} messages (best of {args.repeat})")
    print(f"{'subscribers':>11} {'floor msg/s':>14} {'bus msg/s':>14} {'bus/floor time':>15}")
    for subs in (1, 10):
        floor = best(fanout_floor, args.messages, subs, repeat=args.repeat)
        bus = best(fanout_bus, args.messages, subs, repeat=args.repeat)
        deliveries = args.messages * subs
        print(f"{subs:>11} {deliveries / floor:>14,.0f} {deliveries / bus:>14,.0f} {bus / floor:>14.2f}x")

    print()
    print(f"lifecycle of K idle workers (best of {args.repeat}); floor = K raw tasks on an asyncio.Event")
    print(
        f"{'K':>7} {'start ms':>9} {'end ms':>9} {'us/worker':>10} "
        f"{'floor ms':>9} {'start/floor':>12} {'end/floor':>10}"
    )
    for k in args.workers:
        f_start, f_end = best(lifecycle_floor, k, repeat=args.repeat)
        start, end = best(lifecycle_runner, k, repeat=args.repeat)
        print(
            f"{k:>7,} {start * 1e3:>9.1f} {end * 1e3:>9.1f} {(start + end) / k * 1e6:>10.1f} "
            f"{(f_start + f_end) * 1e3:>9.1f} {start / f_start:>11.1f}x {end / f_end:>9.1f}x"
        )


if __name__ == "__main__":
    main()
