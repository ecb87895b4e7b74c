"""From a topology file to its plain document: what is checked before the models.

Steps: read YAML safely with positions -> merge overlays -> interpolate environment variables
(or mark placeholders) -> accept the legacy ``PipelineRunner`` key -> apply ``--set`` overrides.
Nothing here imports pydantic or the models (:mod:`runnerconf.config.loader` validates next).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from runnerconf.config.errors import Problem
from runnerconf.config.files import is_path_text, read_topology_file
from runnerconf.config.interpolate import InterpolationError, Substituted, VariableUse, interpolate, placeholders
from runnerconf.config.overlays import finish_document, merge_documents
from runnerconf.config.overrides import Override, apply_overrides
from runnerconf.config.source import Path, SourceMap, read_yaml

__all__ = ["LEGACY_RUNNER_KEY", "read_topology_data"]

#: The legacy spelling of ``runner``.
LEGACY_RUNNER_KEY = "PipelineRunner"


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
