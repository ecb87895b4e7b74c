"""Start and end of K idle workers, and the memory each takes, next to a floor in the same run.

* start: K idle ``BaseWorker``s added to a ``WorkerRunner``, from ``run()`` until ``on_ready``
  (all K started and registered ready); end: ``end()`` until ``run()`` returns (all K finished,
  unsubscribed, unregistered);
* floor: K raw tasks started (until each has run) and then released through an ``asyncio.Event``
  until all have returned;
* memory: what tracemalloc counts as allocated per idle worker while all K are running, less
  what the floor's K tasks take (the least any worker made of a task must hold).

    python benchmarks/bench_lifecycle.py [--workers 1000 10000 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import time
import tracemalloc

from runnerconf.workers.base_worker import BaseWorker
from runnerconf.workers.runner import WorkerRunner


async def floor(k: int, memory: bool = False) -> tuple[float, float, float]:
    release = asyncio.Event()
    started = [0]

    async def idle() -> None:
        started[0] += 1
        await release.wait()

    before = tracemalloc.get_traced_memory()[0] if memory else 0
    t0 = time.perf_counter()
    tasks = [asyncio.ensure_future(idle()) for _ in range(k)]
    while started[0] < k:
        await asyncio.sleep(0)
    t1 = time.perf_counter()
    held = (tracemalloc.get_traced_memory()[0] - before) if memory else 0
    release.set()
    await asyncio.gather(*tasks)
    return t1 - t0, time.perf_counter() - t1, held / k


async def runner(k: int, memory: bool = False) -> tuple[float, float, float]:
    before = tracemalloc.get_traced_memory()[0] if memory else 0
    r = WorkerRunner(handle_sigint=False)
    await r.add_workers(*(BaseWorker(f"w{i}") for i in range(k)))
    marks: list[float] = []
    held = [0.0]

    @r.event_handler("on_ready")
    async def ready(r: WorkerRunner) -> None:
        while len(r.registry) < k:
            await asyncio.sleep(0)
        marks.append(time.perf_counter())
        if memory:
            held[0] = tracemalloc.get_traced_memory()[0] - before
        await r.end()

    t0 = time.perf_counter()
    await r.run()
    t2 = time.perf_counter()
    assert r.summary()["finished"] == k
    return marks[0] - t0, t2 - marks[0], held[0] / k


def best(fn, k: int, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    results = []
    for _ in range(repeat):
        gc.collect()
        results.append(asyncio.run(fn(k)))
    return min(r[0] for r in results), min(r[1] for r in results)


def per_worker_memory(fn, k: int) -> float:  # type: ignore[no-untyped-def]
    gc.collect()
    tracemalloc.start()
    try:
        return float(asyncio.run(fn(k, True))[2])
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(f"lifecycle of K idle workers (best of {args.repeat}); floor = K raw tasks on an asyncio.Event")
    print(f"{'K':>8} {'start ms':>9} {'end ms':>9} {'us/worker':>10} {'floor ms':>9} {'start/floor':>12} {'end/floor':>10}")
    for k in args.workers:
        f_start, f_end = best(floor, k, args.repeat)
        start, end = best(runner, k, args.repeat)
        print(
            f"{k:>8,} {start * 1e3:>9.1f} {end * 1e3:>9.1f} {(start + end) / k * 1e6:>10.1f} "
            f"{(f_start + f_end) * 1e3:>9.1f} {start / f_start:>11.2f}x {end / f_end:>9.2f}x   (target <= 2.5x)"
        )
    k = 10_000
    worker, task = per_worker_memory(runner, k), per_worker_memory(floor, k)
    print(f"memory per idle worker (K = {k:,}, tracemalloc): {worker / 1024:.2f} KiB; a raw task: {task / 1024:.2f} KiB;"
          f" the worker beyond its task: {(worker - task) / 1024:.2f} KiB   (target <= 3 KiB per worker)")


if __name__ == "__main__":
    main()
