"""A real process running a WorkerRunner, for the signal tests.

argv: handle_sigterm(0/1) end_delay(seconds) on_signal(end/cancel)
Prints READY once the runner is ready, then one JSON line with the outcome when run() returns.
"""

import asyncio
import json
import sys

from runnerconf.workers.base_worker import BaseWorker
from runnerconf.workers.runner import WorkerRunner


class Slow(BaseWorker):
    def __init__(self, end_delay: float) -> None:
        super().__init__("slow")
        self.end_delay = end_delay
        self.hooks: list[str] = []

    async def on_end(self, reason):
        self.hooks.append(f"end:{reason}")

    async def on_cancel(self, reason):
        self.hooks.append(f"cancel:{reason}")

    async def main(self):
        await self.wait_for_stop()
        await asyncio.sleep(self.end_delay)
        self.hooks.append("main-done")


async def main() -> None:
    handle_sigterm, end_delay, on_signal = bool(int(sys.argv[1])), float(sys.argv[2]), sys.argv[3]
    runner = WorkerRunner(handle_sigterm=handle_sigterm, on_signal=on_signal, stop_timeout=30)
    worker = Slow(end_delay)
    await runner.add_workers(worker)
    runner.add_event_handler("on_ready", lambda r: print("READY", flush=True))
    await runner.run(auto_end=False)
    print(
        json.dumps(
            {
                "hooks": worker.hooks,
                "outcome": runner.results["slow"].outcome,
                "signals": runner.signals_received,
                "cancelled": runner.cancelled,
            }
        ),
        flush=True,
    )


asyncio.run(main())
