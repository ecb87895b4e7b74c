"""runnerconf: run asyncio worker topologies from a file."""

from __future__ import annotations

import os as _os
import sys as _sys

# ``python -m runnerconf`` puts the current directory first on sys.path before importing this
# package (sys.argv[0] is "-m" meanwhile): a stray yaml.py, redis.py or hiredis.py there would
# shadow the installed package. The topology's own modules are found without it.
if _sys.argv[:1] == ["-m"] and _sys.path[:1] == [_os.getcwd()]:
    del _sys.path[0]

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
