"""runnerconf: run asyncio worker topologies from a file."""

from __future__ import annotations

from runnerconf.bus import AsyncQueueBus, BusDataMessage, BusMessage, WorkerBus
from runnerconf.config import Topology, TopologyError, build_runner, load_topology, run_topology
from runnerconf.pipeline.worker import PipelineWorker
from runnerconf.registry import WorkerRegistry
from runnerconf.workers.base_worker import BaseWorker
from runnerconf.workers.runner import WorkerRunner

__version__ = "0.1.0"

__all__ = [
    "AsyncQueueBus",
    "BaseWorker",
    "BusDataMessage",
    "BusMessage",
    "PipelineWorker",
    "Topology",
    "TopologyError",
    "WorkerBus",
    "WorkerRegistry",
    "WorkerRunner",
    "__version__",
    "build_runner",
    "load_topology",
    "run_topology",
]
