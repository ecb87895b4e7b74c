"""A long-lived host stays bounded: what a runner keeps of finished workers does not grow."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys

from runnerconf.workers.base_worker import BaseWorker
from runnerconf.workers.outcomes import MAX_RECENT_NAMES, MAX_RESULTS
from runnerconf.workers.runner import WorkerRunner

from .helpers import eventually


class Brief(BaseWorker):
    def __init__(self, name: str, fail: bool) -> None:
        super().__init__(name)
        self.fail = fail

    async def main(self) -> None:
        if self.fail:
            raise RuntimeError(f"{self.name} failed on purpose" + "!" * 200)


async def churn(runner: WorkerRunner, start: int, count: int) -> None:
    batch = 500
    for first in range(start, start + count, batch):
        await runner.add_workers(*(Brief(f"job-{i}", fail=i % 10 == 0) for i in range(first, first + batch)))
        await eventually(lambda: not runner.workers(), timeout=30)


async def test_100_000_short_lived_workers_with_unique_names_keep_memory_flat() -> None:
    # (pytest keeps every log record it captures: logging is off here, or it would be what grows)
    logging.disable(logging.CRITICAL)
    try:
        await _churn_100_000()
    finally:
        logging.disable(logging.NOTSET)


async def _churn_100_000() -> None:
    runner = WorkerRunner(handle_sigint=False)
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(lambda: runner.running)
    await churn(runner, 0, 20_000)  # fills what is kept on purpose (recent outcomes and names)
    gc.collect()
    before = sys.getallocatedblocks()
    await churn(runner, 20_000, 80_000)
    gc.collect()
    grown = sys.getallocatedblocks() - before
    await runner.end()
    await task
    # A few thousand blocks of noise at most; one block per worker would be 80,000.
    assert grown < 20_000, grown
    assert len(runner.results) == MAX_RESULTS
    assert runner.summary() == {"finished": 90_000, "failed": 10_000, "cancelled": 0, "abandoned": 0}
    assert len(runner._ever_ready) <= MAX_RECENT_NAMES and len(runner._finished_ready) <= MAX_RECENT_NAMES
    assert runner.registry.watched() == 0 and len(runner.registry) == 0
    # Only the latest failures keep their traceback's frames (the others keep the exception).
    failed = [r for r in runner.results.values() if r.outcome == "failed"]
    kept_frames = sum(1 for r in failed if r.error is not None and r.error.__traceback__ is not None and r.error.__traceback__.tb_frame.f_locals)
    assert kept_frames <= 50
