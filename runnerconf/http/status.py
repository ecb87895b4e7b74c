"""What ``/healthz`` and ``/readyz`` say of a set of runners."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runnerconf.workers.runner import WorkerRunner

__all__ = ["health", "readiness"]

#: Workers named in a not-ready answer, at most.
_LIST = 20


def health(runners: Sequence[WorkerRunner]) -> tuple[bool, dict[str, Any]]:
    """Healthy while every runner is starting or running; not once one is stopping or done."""
    phases = {r.name: r.phase for r in runners}
    ok = all(p in ("idle", "running") for p in phases.values())
    return ok, {"status": "ok" if ok else "stopping", "runners": phases}


def readiness(runners: Sequence[WorkerRunner]) -> tuple[bool, dict[str, Any]]:
    """Ready once every runner runs and every root worker still running is ready."""
    waiting: list[str] = []
    for runner in runners:
        if runner.phase != "running":
            return False, {"status": f"runner {runner.name} is {runner.phase}", "runners": {r.name: r.phase for r in runners}}
        waiting += [w.name for w in runner.workers() if w.parent is None and not w.ready]
    if waiting:
        shown = waiting[:_LIST] + ([f"... and {len(waiting) - _LIST} more"] if len(waiting) > _LIST else [])
        return False, {"status": "waiting for workers", "not_ready": shown}
    return True, {"status": "ready", "runners": {r.name: r.phase for r in runners}}
