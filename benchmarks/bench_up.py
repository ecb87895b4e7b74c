"""``up`` of K idle workers until every one is ready, next to a floor, each in a fresh process.

* runnerconf: what ``runnerconf up`` does (logging to a file, the YAML file read, validated,
  resolved, built, run) until every worker is ready (registered), timed from the child's
  first line, so the interpreter's own start is left out on both sides;
* floor: the same file loaded with PyYAML's C loader (no positions, no validation) and K raw
  asyncio tasks started on an Event, until every one has run.

    python benchmarks/bench_up.py [--workers 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T0 = time.perf_counter()


def child_up(path: str) -> None:
    import asyncio
    import logging

    from runnerconf.config.build import build_topology, resolve
    from runnerconf.config.loader import load_topology
    from runnerconf.log_format import configure_logging

    configure_logging("info")
    handler = logging.getLogger().handlers[0]
    handler.stream = open(os.devnull, "w")  # noqa: SIM115 - the log lines are written, to nowhere

    async def main() -> float:
        import gc

        pause = os.environ.get("BENCH_GC_PAUSE", "1") == "1"  # 0: as `up` was before it paused
        if pause:
            gc.disable()  # as `runnerconf up` does while it reads and builds (cli/up.py, host.py)
        topology = load_topology(path)
        launch = await build_topology(topology, resolve(topology))
        if pause:
            gc.enable()
            gc.freeze()
        runner = launch.target
        task = asyncio.ensure_future(launch.run())
        expected = len(topology.workers)
        while len(runner.registry) < expected:  # every worker registered: ready
            await asyncio.sleep(0.001)
        elapsed = time.perf_counter() - T0
        await launch.end()
        await task
        return elapsed

    print(json.dumps({"seconds": asyncio.run(main())}))


def child_floor(path: str) -> None:
    import asyncio

    import yaml

    async def main() -> float:
        with open(path, encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=yaml.CSafeLoader)
        release = asyncio.Event()
        started = [0]

        async def idle() -> None:
            started[0] += 1
            await release.wait()

        tasks = [asyncio.ensure_future(idle()) for _ in data["workers"]]
        while started[0] < len(tasks):
            await asyncio.sleep(0)
        elapsed = time.perf_counter() - T0
        release.set()
        await asyncio.gather(*tasks)
        return elapsed

    print(json.dumps({"seconds": asyncio.run(main())}))


def measure(mode: str, path: str) -> float:
    out = subprocess.run([sys.executable, __file__, "--child", mode, path], capture_output=True, text=True, check=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        (child_up if args.child[0] == "up" else child_floor)(args.child[1])
        return
    with tempfile.TemporaryDirectory() as tmp:
        # The validator kept between runs goes to a directory of this run (kept from its first
        # `up` on, as on a user's machine), never the user's own cache.
        os.environ["RUNNERCONF_CACHE_DIR"] = str(Path(tmp) / "cache")
        path = Path(tmp) / "idle.yaml"
        lines = ["runner: {name: bench, auto_end: false}", "workers:"]
        lines += [f'  - {{name: w{i}, class: "runnerconf.workers.base_worker:BaseWorker"}}' for i in range(args.workers)]
        path.write_text("\n".join(lines) + "\n")
        ups, floors = [], []
        for _ in range(args.runs):  # in turn: up, floor, up, floor...
            ups.append(measure("up", str(path)))
            floors.append(measure("floor", str(path)))
    best_up, best_floor = min(ups), min(floors)
    print(f"up of {args.workers:,} idle workers until all are ready (best of {args.runs})")
    print(f"  runnerconf up path: {best_up * 1000:8.0f} ms")
    print(f"  floor (C YAML load + raw tasks): {best_floor * 1000:8.0f} ms")
    print(f"  ratio {best_up / best_floor:.2f}x  (target <= 3x)")


if __name__ == "__main__":
    main()
