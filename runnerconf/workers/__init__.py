"""Workers and the runner that runs them."""

from __future__ import annotations

from runnerconf.workers.base_worker import BaseWorker, WorkerActivationArgs, WorkerParams, WorkerState
from runnerconf.workers.runner import WorkerResult, WorkerRunner

__all__ = ["BaseWorker", "WorkerActivationArgs", "WorkerParams", "WorkerResult", "WorkerRunner", "WorkerState"]
