"""The declarative layer: topology files -> validated models -> a runner with its workers.

The names below are imported on first use, so that a light module of this package
(``runnerconf.config.discovery``, ``runnerconf.config.reports``) costs no pydantic import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runnerconf.utils.lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from runnerconf.config.build import Plan, build_runner, build_runners, import_string, resolve, run_topology
    from runnerconf.config.errors import Problem, TopologyError
    from runnerconf.config.loader import load_topology
    from runnerconf.config.models import Topology
    from runnerconf.config.schema import schema_json, topology_schema

_EXPORTS = {
    "Plan": "runnerconf.config.build",
    "Problem": "runnerconf.config.errors",
    "Topology": "runnerconf.config.models",
    "TopologyError": "runnerconf.config.errors",
    "build_runner": "runnerconf.config.build",
    "build_runners": "runnerconf.config.build",
    "import_string": "runnerconf.config.build",
    "load_topology": "runnerconf.config.loader",
    "resolve": "runnerconf.config.build",
    "run_topology": "runnerconf.config.build",
    "schema_json": "runnerconf.config.schema",
    "topology_schema": "runnerconf.config.schema",
}

__all__ = sorted(_EXPORTS)


__getattr__ = _lazy_exports(__name__, globals(), _EXPORTS)
