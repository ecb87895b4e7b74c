"""runnerconf: run asyncio worker topologies from a file.

The public API below is imported on first use, so that ``import runnerconf`` (and the command
line's ``--help``) costs almost nothing.
"""

from __future__ import annotations

import os as _os
import sys as _sys
from typing import TYPE_CHECKING

from runnerconf._version import __version__

# ``python -m runnerconf`` puts the current directory first on sys.path before importing this
# package (sys.argv[0] is "-m" meanwhile): a stray yaml.py, redis.py or hiredis.py there would
# shadow the installed package. The topology's own modules are found without it.
if _sys.argv[:1] == ["-m"] and _sys.path[:1] == [_os.getcwd()]:
    del _sys.path[0]

from runnerconf.utils.lazy import lazy_exports as _lazy_exports  # noqa: E402  (after the sys.path fix)

if TYPE_CHECKING:
    from runnerconf.bus import AsyncQueueBus, BusDataMessage, BusMessage, WorkerBus
    from runnerconf.config import Topology, TopologyError, build_runner, load_topology, run_topology
    from runnerconf.pipeline.worker import PipelineWorker
    from runnerconf.registry import WorkerRegistry
    from runnerconf.workers.base_worker import BaseWorker
    from runnerconf.workers.runner import WorkerRunner

_EXPORTS = {
    "AsyncQueueBus": "runnerconf.bus",
    "BaseWorker": "runnerconf.workers.base_worker",
    "BusDataMessage": "runnerconf.bus",
    "BusMessage": "runnerconf.bus",
    "PipelineWorker": "runnerconf.pipeline.worker",
    "Topology": "runnerconf.config",
    "TopologyError": "runnerconf.config",
    "WorkerBus": "runnerconf.bus",
    "WorkerRegistry": "runnerconf.registry",
    "WorkerRunner": "runnerconf.workers.runner",
    "build_runner": "runnerconf.config",
    "load_topology": "runnerconf.config",
    "run_topology": "runnerconf.config",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


__getattr__ = _lazy_exports(__name__, globals(), _EXPORTS)
