"""From a topology file to a validated :class:`Topology`.

Steps: read the document (:mod:`runnerconf.config.document`: YAML with positions, overlays,
variables, the legacy ``PipelineRunner`` key, ``--set`` overrides) -> validate with the models ->
check cross-references. Every problem found on the way is collected into one :class:`TopologyError`.
Nothing here imports the user's modules.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from runnerconf.config.document import LEGACY_RUNNER_KEY, read_topology_data
from runnerconf.config.errors import Problem, TopologyError, add_new
from runnerconf.config.interpolate import VariableUse
from runnerconf.config.kinds import WorkerKind, kinds_for
from runnerconf.config.messages import translate_validation_error
from runnerconf.config.models import Topology, topology_model
from runnerconf.config.overrides import Override
from runnerconf.config.references import check_references
from runnerconf.config.source import SourceMap
from runnerconf.config.validator_cache import validate

__all__ = ["LEGACY_RUNNER_KEY", "load_topology", "read_topology_data", "topology_from_data", "topology_from_document"]



def load_topology(
    source: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Sequence[Override | str] = (),
    filename: str | None = None,
    interpolation: bool = True,
    overlays: Sequence[str | os.PathLike[str]] = (),
) -> Topology:
    """Load and validate a topology.

    Args:
        source: A path (``str`` naming an existing file, or a path object) or YAML text.
        environ: Variables for ``${VAR}`` interpolation. Default: ``os.environ``.
        overrides: ``PATH=VALUE`` overrides (see :func:`~runnerconf.config.overrides.parse_override`).
        filename: Name to report for YAML text.
        interpolation: False leaves every ``${VAR}`` as a placeholder of the expected type, so
            that the structure is checked without any variable set (``--no-interpolate``).
        overlays: Files merged over ``source``, in order (see :mod:`runnerconf.config.overlays`).

    Returns:
        The validated model; ``.warnings`` holds deprecations, ``.source`` the positions.

    Raises:
        TopologyError: with every problem found.
    """
    data, source_map, uses, problems = read_topology_data(
        source, environ=environ, overrides=overrides, filename=filename, interpolation=interpolation, overlays=overlays
    )
    return topology_from_data(data, source_map, uses, problems)


def topology_from_document(data: dict[str, Any], *, file: str) -> Topology:
    """A topology from plain data that was a normalised topology (a revision that ``apply``
    sent): validated as a file is, without YAML or variables. ``file`` is the topology file
    whose directory holds the user's modules (for imports), and is named in messages.

    Raises:
        TopologyError: with every problem found.
    """
    return topology_from_data(data, SourceMap(file), [], [])


def topology_from_data(data: dict[str, Any], source_map: SourceMap, uses: list[VariableUse], problems: list[Problem]) -> Topology:
    """The topology of a document :func:`read_topology_data` read (with its source map, variable
    uses and problems so far): validated with the models, cross-references checked.

    Raises:
        TopologyError: with every problem found.
    """
    kinds = kinds_for(_worker_types(data))
    problems.extend(_unloadable_kinds(data, kinds, source_map))
    topology: Topology | None = None
    try:
        topology = validate(topology_model(kinds), data)
    except ValidationError as exc:
        add_new(problems, translate_validation_error(exc, source_map, kinds))
    add_new(problems, check_references(data, source_map))
    if topology is None or any(p.severity == "error" for p in problems):
        raise TopologyError(problems)
    topology._source = source_map
    topology._warnings = [p for p in problems if p.severity == "warning"]
    topology._variables = uses
    for w in topology._warnings:
        warnings.warn_explicit(w.message, DeprecationWarning, w.file, w.line, module="runnerconf.config.loader")
    return topology


def _worker_types(data: dict[str, Any]) -> set[Any]:
    """The ``type`` of every worker mapping of a document."""
    from runnerconf.config.references import _workers

    return {w.get("type") for _, w in _workers(data) if "type" in w}


def _unloadable_kinds(data: dict[str, Any], kinds: dict[str, WorkerKind], source: SourceMap) -> list[Problem]:
    """A worker of a kind whose package failed to load: one clear error at its ``type``."""
    from runnerconf.config.references import _workers

    problems = []
    for path, worker in _workers(data):
        kind = kinds.get(worker.get("type")) if isinstance(worker.get("type"), str) else None
        if kind is not None and kind.error is not None:
            problems.append(
                source.problem((*path, "type"), "kind-unavailable", f"worker kind {kind.name!r} from {kind.source} cannot be used: {kind.error}")
            )
    return problems
