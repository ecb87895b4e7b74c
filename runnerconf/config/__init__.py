"""The declarative layer: topology files -> validated models -> a runner with its workers."""

from __future__ import annotations

from runnerconf.config.build import Plan, build_runner, build_runners, import_string, resolve, run_topology
from runnerconf.config.errors import Problem, TopologyError
from runnerconf.config.loader import load_topology
from runnerconf.config.models import Topology
from runnerconf.config.schema import schema_json, topology_schema

__all__ = [
    "Plan",
    "Problem",
    "Topology",
    "TopologyError",
    "build_runner",
    "build_runners",
    "import_string",
    "load_topology",
    "resolve",
    "run_topology",
    "schema_json",
    "topology_schema",
]
