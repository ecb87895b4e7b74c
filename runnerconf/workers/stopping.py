"""The stop ladder of a runner: graceful first, forced second, abandoned last, always bounded.

1. End: roots are asked to finish (``BusEndWorkerMessage``) and get ``stop_timeout``; a cancel
   (a second signal, ``cancel()``) cuts the wait short.
2. Cancel: what still runs gets ``BusCancelWorkerMessage`` (its ``on_cancel`` runs) and
   ``cancel_timeout``.
3. Backstop: a worker whose inbox is stuck never saw the cancel: its task is cancelled, again
   within ``cancel_timeout``.
4. Abandon: a worker that ignores cancellation is reported and left behind, so ``run()`` returns.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from runnerconf.bus.messages import BusCancelWorkerMessage, BusEndWorkerMessage

if TYPE_CHECKING:
    from runnerconf.workers.base_worker import BaseWorker
    from runnerconf.workers.runner import WorkerRunner

__all__ = ["tear_down"]

logger = logging.getLogger(__name__)


async def tear_down(runner: WorkerRunner, cancelled_from_outside: bool) -> None:
    """Stop every worker of ``runner`` that is still running (see the module docs)."""
    kind, reason = runner._request or ("end", "all root workers finished")
    escalated = runner._escalated
    assert escalated is not None
    # Workers that never started (run() failed during setup) have nothing to stop.
    queued, runner._queued = runner._queued, []
    for w in queued:
        runner._worker_done(w, outcome="cancelled")
    if runner._workers and kind == "end" and not cancelled_from_outside:
        if runner._request is None:
            runner._request = (kind, reason)
            await runner._send_to_roots(BusEndWorkerMessage, reason)
        if not await runner._wait_workers(runner.stop_timeout, escalated):
            if not escalated.is_set():
                logger.warning(
                    "runner %s: %d worker(s) still running %.1fs after the end was asked; cancelling: %s",
                    runner.name,
                    len(runner._workers),
                    runner.stop_timeout,
                    names_of(runner._workers),
                )
                reason = "stop_timeout expired"
            else:
                reason = runner._request[1] if runner._request else reason
    if not runner._workers:
        return
    if kind == "end" or cancelled_from_outside:
        await runner._send_to_roots(BusCancelWorkerMessage, reason or "runner cancelled")
    if await runner._wait_workers(runner.cancel_timeout):
        return
    logger.warning(
        "runner %s: %d worker(s) did not stop after the cancel; cancelling their tasks: %s",
        runner.name,
        len(runner._workers),
        names_of(runner._workers),
    )
    for w in list(runner._workers.values()):
        task = w._rc.task
        if task is not None:
            task.cancel()
    if await runner._wait_workers(runner.cancel_timeout):
        return
    logger.error(
        "runner %s: abandoning %d worker(s) that ignore cancellation: %s",
        runner.name,
        len(runner._workers),
        names_of(runner._workers),
    )
    for w in list(runner._workers.values()):
        runner._worker_done(w, outcome="abandoned")


def names_of(workers: dict[str, BaseWorker], limit: int = 10) -> str:
    """``a, b, c and 7 more``."""
    names = list(workers)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
