"""From a topology file to a validated :class:`Topology`.

Steps: read YAML safely with positions -> interpolate environment variables -> accept the legacy
``PipelineRunner`` key -> apply ``--set`` overrides -> validate with the models -> check
cross-references. Every problem found on the way is collected into one :class:`TopologyError`.
Nothing here imports the user's modules.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from runnerconf.config.errors import Problem, TopologyError
from runnerconf.config.files import is_path_text, read_topology_file
from runnerconf.config.interpolate import InterpolationError, Substituted, VariableUse, interpolate, placeholders
from runnerconf.config.kinds import WorkerKind, kinds_for
from runnerconf.config.messages import LEGACY_RUNNER_KEY, translate_validation_error
from runnerconf.config.models import Topology, topology_model
from runnerconf.config.overlays import finish_document, merge_documents
from runnerconf.config.overrides import Override, apply_overrides
from runnerconf.config.references import check_references
from runnerconf.config.source import Path, SourceMap, read_yaml

__all__ = ["LEGACY_RUNNER_KEY", "load_topology", "read_topology_data", "topology_from_document"]



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
    return _validated(data, source_map, uses, problems)


def topology_from_document(data: dict[str, Any], *, file: str) -> Topology:
    """A topology from plain data that was a normalised topology (a revision that ``apply``
    sent): validated as a file is, without YAML or variables. ``file`` is the topology file
    whose directory holds the user's modules (for imports), and is named in messages.

    Raises:
        TopologyError: with every problem found.
    """
    return _validated(data, SourceMap(file), [], [])


def _validated(data: dict[str, Any], source_map: SourceMap, uses: list[VariableUse], problems: list[Problem]) -> Topology:
    kinds = kinds_for(_worker_types(data))
    problems.extend(_unloadable_kinds(data, kinds, source_map))
    topology: Topology | None = None
    try:
        topology = topology_model(kinds).model_validate(data)
    except ValidationError as exc:
        # A value already reported (a missing variable, a bad override) is not reported twice.
        seen = {p.path for p in problems}
        problems.extend(p for p in translate_validation_error(exc, source_map, kinds) if p.path not in seen)
    seen = {p.path for p in problems}
    problems.extend(p for p in check_references(data, source_map) if p.path not in seen)
    if topology is None or any(p.severity == "error" for p in problems):
        raise TopologyError(problems)
    topology._source = source_map
    topology._warnings = [p for p in problems if p.severity == "warning"]
    topology._variables = uses
    for w in topology._warnings:
        warnings.warn_explicit(w.message, DeprecationWarning, w.file, w.line, module="runnerconf.config.loader")
    return topology


def read_topology_data(
    source: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Sequence[Override | str] = (),
    filename: str | None = None,
    interpolation: bool = True,
    overlays: Sequence[str | os.PathLike[str]] = (),
) -> tuple[dict[str, Any], SourceMap, list[VariableUse], list[Problem]]:
    """Read, interpolate (or, without ``interpolation``, mark placeholders), rename the legacy key
    and apply overrides; no model validation.

    Returns the plain data, its source map, the variable uses, and the problems found so far.
    Raises TopologyError only for problems that leave no data (unreadable file, bad YAML).
    """
    text, file = _read_text(source, filename)
    data, source_map = read_yaml(text, file)
    if overlays:
        documents = [(data, source_map)]
        for overlay in overlays:
            documents.append(_read_document(overlay))
        data, source_map = merge_documents(documents)
    data = finish_document(data, source_map)
    problems: list[Problem] = []
    uses: list[VariableUse] = []
    env = os.environ if environ is None else environ
    data = _interpolate(data, (), env if interpolation else None, uses, source_map, problems)
    _rename_legacy_key(data, source_map, problems)
    problems.extend(apply_overrides(data, overrides, source_map))
    return data, source_map, uses, problems


def _read_document(path: str | os.PathLike[str]) -> tuple[dict[str, Any], SourceMap]:
    text, name = read_topology_file(path)
    return read_yaml(text, name)


def _read_text(source: str | os.PathLike[str], filename: str | None) -> tuple[str, str]:
    # A path object is a path; a str is a path when it names a file or looks like one (else YAML
    # text). The command line always passes paths, so its arguments are never taken for text.
    if isinstance(source, str) and not is_path_text(source):
        return source, filename or "<string>"
    text, name = read_topology_file(source)
    return text, filename or name


def _interpolate(
    value: Any, path: Path, env: Mapping[str, str] | None, uses: list[VariableUse], source: SourceMap, problems: list[Problem]
) -> Any:
    if isinstance(value, str):
        if "$" not in value:
            return value
        try:
            if env is None:
                return placeholders(value, uses)
            result = interpolate(value, env, uses)
        except InterpolationError as exc:
            problems.append(source.problem(path, exc.code, str(exc)))
            return value
        # What substitution produced is read as a YAML 1.2 scalar where a boolean or a number
        # is expected (see runnerconf.config.types).
        return Substituted(result) if "${" in value else result
    if isinstance(value, dict):
        return {k: _interpolate(v, (*path, k), env, uses, source, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*path, i), env, uses, source, problems) for i, v in enumerate(value)]
    return value


def _rename_legacy_key(data: dict[str, Any], source: SourceMap, problems: list[Problem]) -> None:
    if LEGACY_RUNNER_KEY not in data:
        return
    if "runner" in data:
        problems.append(
            source.problem(
                (LEGACY_RUNNER_KEY,),
                "legacy-and-runner",
                f"both 'runner' and the legacy '{LEGACY_RUNNER_KEY}' are given; keep only 'runner'",
                key=True,
            )
        )
        return
    loc = source.locate((LEGACY_RUNNER_KEY,), key=True)
    problems.append(
        Problem(
            loc.file,
            loc.line,
            loc.column,
            LEGACY_RUNNER_KEY,
            "deprecated-key",
            f"'{LEGACY_RUNNER_KEY}' (at {loc.file}, line {loc.line}) is deprecated; rename it to 'runner'",
            "warning",
        )
    )
    items = [("runner" if k == LEGACY_RUNNER_KEY else k, v) for k, v in data.items()]
    data.clear()
    data.update(items)
    source.move((LEGACY_RUNNER_KEY,), ("runner",))




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
