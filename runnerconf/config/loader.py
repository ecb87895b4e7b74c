"""From a topology file to a validated :class:`Topology`.

Steps: read YAML safely with positions -> interpolate environment variables -> accept the legacy
``PipelineRunner`` key -> apply ``--set`` overrides -> validate with the models -> check
cross-references. Every problem found on the way is collected into one :class:`TopologyError`.
Nothing here imports the user's modules.
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from runnerconf.config.errors import Problem, TopologyError
from runnerconf.config.files import is_path_text, read_topology_file
from runnerconf.config.interpolate import InterpolationError, VariableUse, interpolate
from runnerconf.config.models import (
    BUS_KINDS,
    IMPORT_PATTERN,
    NAME_PATTERN,
    TAG_PREFIX,
    TAGGED_MODELS,
    WORKER_KIND_KEYS,
    WORKER_TYPES,
    Topology,
)
from runnerconf.config.overrides import Override, apply_overrides
from runnerconf.config.references import check_references
from runnerconf.config.source import Path, SourceMap, read_yaml

__all__ = ["LEGACY_RUNNER_KEY", "load_topology", "read_topology_data"]

LEGACY_RUNNER_KEY = "PipelineRunner"


def load_topology(
    source: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Sequence[Override | str] = (),
    filename: str | None = None,
) -> Topology:
    """Load and validate a topology.

    Args:
        source: A path (``str`` naming an existing file, or a path object) or YAML text.
        environ: Variables for ``${VAR}`` interpolation. Default: ``os.environ``.
        overrides: ``PATH=VALUE`` overrides (see :func:`~runnerconf.config.overrides.parse_override`).
        filename: Name to report for YAML text.

    Returns:
        The validated model; ``.warnings`` holds deprecations, ``.source`` the positions.

    Raises:
        TopologyError: with every problem found.
    """
    data, source_map, uses, problems = read_topology_data(source, environ=environ, overrides=overrides, filename=filename)
    topology: Topology | None = None
    try:
        topology = Topology.model_validate(data)
    except ValidationError as exc:
        # A value already reported (a missing variable, a bad override) is not reported twice.
        seen = {p.path for p in problems}
        problems.extend(p for p in translate_validation_error(exc, source_map) if p.path not in seen)
    problems.extend(check_references(data, source_map))
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
) -> tuple[dict[str, Any], SourceMap, list[VariableUse], list[Problem]]:
    """Read, interpolate, rename the legacy key and apply overrides; no model validation.

    Returns the plain data, its source map, the variable uses, and the problems found so far.
    Raises TopologyError only for problems that leave no data (unreadable file, bad YAML).
    """
    text, file = _read_text(source, filename)
    data, source_map = read_yaml(text, file)
    problems: list[Problem] = []
    uses: list[VariableUse] = []
    env = os.environ if environ is None else environ
    data = _interpolate(data, (), env, uses, source_map, problems)
    _rename_legacy_key(data, source_map, problems)
    problems.extend(apply_overrides(data, overrides, source_map))
    return data, source_map, uses, problems


def _read_text(source: str | os.PathLike[str], filename: str | None) -> tuple[str, str]:
    # A path object is a path; a str is a path when it names a file or looks like one (else YAML
    # text). The command line always passes paths, so its arguments are never taken for text.
    if isinstance(source, str) and not is_path_text(source):
        return source, filename or "<string>"
    text, name = read_topology_file(source)
    return text, filename or name


def _interpolate(
    value: Any, path: Path, env: Mapping[str, str], uses: list[VariableUse], source: SourceMap, problems: list[Problem]
) -> Any:
    if isinstance(value, str):
        try:
            return interpolate(value, env, uses)
        except InterpolationError as exc:
            problems.append(source.problem(path, exc.code, str(exc)))
            return value
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


# -- pydantic errors -> problems ---------------------------------------------------------------


def translate_validation_error(exc: ValidationError, source: SourceMap, root: type[BaseModel] = Topology) -> list[Problem]:
    """Turn pydantic's errors into problems with places and actionable messages."""
    problems = []
    for err in exc.errors(include_url=False):
        raw = tuple(err["loc"])
        path = tuple(p for p in raw if not (isinstance(p, str) and p.startswith(TAG_PREFIX)))
        kind, value = err["type"], err.get("input")
        if kind == "extra_forbidden":
            key = str(path[-1])
            allowed = _allowed_keys(root, raw[:-1])
            problems.append(source.problem(path, "unknown-key", _unknown_key_message(key, allowed), key=True))
        elif kind == "missing":
            problems.append(source.problem(path[:-1], "missing-key", f"missing required key {path[-1]!r}"))
        elif kind == "worker-kind":
            problems.append(source.problem(path, "worker-kind", _worker_kind_message(value)))
        elif kind == "bus-type":
            problems.append(source.problem((*path, "type"), "bus-type", _choice_message("bus type", value, BUS_KINDS)))
        else:
            message = _MESSAGES.get(kind) or _pattern_message(err) or err["msg"]
            if "got " not in message:
                message = f"{message}; got {_show(value)}"
            problems.append(source.problem(path, _code(kind), message))
    return problems


_MESSAGES = {
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "float_parsing": "expected a number",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
}


def _pattern_message(err: Any) -> str | None:
    if err["type"] != "string_pattern_mismatch":
        return None
    pattern = (err.get("ctx") or {}).get("pattern")
    if pattern == IMPORT_PATTERN:
        return "expected an import path `module:attribute`, such as `myapp.workers:Printer`"
    if pattern == NAME_PATTERN:
        return "expected a name of letters, digits, '_', '#', '@' or '-' (at most 128, not starting with '#', '@' or '-')"
    return None


def _code(kind: str) -> str:
    return {"literal_error": "bad-choice", "string_pattern_mismatch": "bad-format"}.get(kind, kind.replace("_", "-"))


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unknown_key_message(key: str, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key {key!r}{hint} (expected one of: {', '.join(allowed)})"


def _choice_message(what: str, value: Any, choices: Iterable[str]) -> str:
    got = value.get("type") if isinstance(value, dict) else value
    choices = list(choices)
    close = difflib.get_close_matches(str(got), choices, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {got!r}{hint} (expected one of: {', '.join(choices)})"


def _worker_kind_message(value: Any) -> str:
    if not isinstance(value, dict):
        return f"expected a worker mapping with `name` and one of `class`, `factory` or `type`; got {_show(value)}"
    present = [k for k in WORKER_KIND_KEYS if k in value]
    if not present:
        return "the worker needs one of `class` (a BaseWorker subclass), `factory` (a function) or a built-in `type`"
    if len(present) > 1:
        return f"the worker has {' and '.join(f'`{k}`' for k in present)}; a worker is exactly one of `class`, `factory` or `type`"
    return _choice_message("worker type", value["type"], WORKER_TYPES)


def _allowed_keys(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``loc`` accepts (aliases), following lists, dicts and union tags."""
    current: Any = root
    for part in loc:
        if isinstance(part, str) and part.startswith(TAG_PREFIX):
            current = TAGGED_MODELS.get(part, current)
            continue
        current = _unwrap(current)
        if isinstance(part, int):
            args = get_args(current)
            current = args[0] if args else Any
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
            current = field.annotation if field is not None else Any
        else:  # a dict's values
            args = get_args(current)
            current = args[-1] if args else Any
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        keys = [f.alias or n for n, f in current.model_fields.items()]
        if current is Topology:
            keys.append(LEGACY_RUNNER_KEY)
        return keys
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional around a model or a container."""
    while True:
        origin = get_origin(annotation)
        if origin is None:
            return annotation
        args = [a for a in get_args(annotation) if a is not type(None)]
        if origin in (list, dict):
            return annotation
        if len(args) == 1 or str(origin).endswith("Annotated"):
            annotation = args[0]
        else:
            return annotation
