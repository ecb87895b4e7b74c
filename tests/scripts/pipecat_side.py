"""The pipecat side of the interop test: pipecat-ai's own WorkerRunner and RedisBus, no runnerconf.

Usage: pipecat_side.py REDIS_URL CHANNEL. A worker 'pc-worker' watches 'rc-worker' (a worker of a
runnerconf runner on the same channel); once it is ready it sends it a data message (a
BusDataMessage dataclass of its own, as pipecat code does), and prints what 'rc-worker' sends back.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import Any

from loguru import logger

logger.remove()
logger.add(sys.stderr, level="INFO")

from pipecat.bus import BusDataMessage  # noqa: E402
from pipecat.bus.network.redis import RedisBus  # noqa: E402
from pipecat.workers.base_worker import BaseWorker  # noqa: E402
from pipecat.workers.runner import WorkerRunner  # noqa: E402
from redis.asyncio import Redis  # noqa: E402


@dataclass(kw_only=True)
class Chat(BusDataMessage):
    payload: Any = None


class PcWorker(BaseWorker):
    async def on_worker_ready(self, data: Any) -> None:
        await super().on_worker_ready(data)
        if data.worker_name == "rc-worker":
            print("pc: saw rc-worker ready", flush=True)
            await self.send_bus_message(Chat(source=self.name, target="rc-worker", payload={"hello": "from pipecat"}))

    async def on_bus_message(self, message: Any) -> None:
        await super().on_bus_message(message)
        if type(message) is BusDataMessage and message.target == self.name:  # data from runnerconf
            print(f"pc: got {getattr(message, 'payload', None)!r}", flush=True)


async def main() -> None:
    url, channel = sys.argv[1], sys.argv[2]
    redis = Redis.from_url(url)
    runner = WorkerRunner(name="pc-runner", bus=RedisBus(redis=redis, channel=channel))
    worker = PcWorker(name="pc-worker")
    await runner.add_workers(worker)
    await worker.watch_workers("rc-worker")
    print("pc: running", flush=True)
    await runner.run()
    await redis.aclose()
    print("pc: runner ended", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
