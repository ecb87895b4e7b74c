"""Pydantic's validation errors, as problems for people: one per place, saying what is expected.

Where pydantic reports one wrong value several times (once per member of a union: four errors
for one ``null``), the place gets one problem listing what would have been right. A string where
a number or a boolean is expected says so, and why (YAML 1.2 reads only ``true``/``false`` as
booleans; a quoted ``"5"`` is a string).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from runnerconf.config.document import LEGACY_RUNNER_KEY
from runnerconf.config.errors import Problem
from runnerconf.config.kinds import BUILTIN, WORKER_KIND_KEYS, WorkerKind
from runnerconf.config.models import BUS_KINDS, CHANNEL_PATTERN, TAG_PREFIX, URL_PATTERN, Topology, tagged_models
from runnerconf.config.source import SourceMap, parse_scalar
from runnerconf.config.types import ADDRESS_PATTERN, IMPORT_PATTERN, NAME_PATTERN
from runnerconf.utils.secrets import SECRET_KEY

__all__ = ["LEGACY_RUNNER_KEY", "translate_validation_error"]


#: What each type error expects (the key is pydantic's error type).
_EXPECTED = {
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "null",
}


def translate_validation_error(
    exc: ValidationError,
    source: SourceMap,
    kinds: dict[str, WorkerKind] | None = None,
    root: type[BaseModel] = Topology,
    prefix: tuple[Any, ...] = (),
) -> list[Problem]:
    """Turn pydantic's errors into problems with places and actionable messages.

    ``root`` is the model that was validated; ``prefix`` is where its input stands in the
    document (``("workers", 0, "params")`` for a worker's params checked on their own).
    """
    kinds = kinds or BUILTIN
    tagged = tagged_models(kinds)
    by_path: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for err in exc.errors(include_url=False):
        err["_raw"] = tuple(err["loc"])
        raw = (*prefix, *err["loc"])
        by_path.setdefault(_clean(raw, source, keep_last=err["type"] in ("missing", "extra_forbidden")), []).append(err)
    problems = []
    for path, errors in by_path.items():
        if _another_branch_went_deeper(path, errors, by_path):
            continue
        problem = _one(path, errors, source, kinds, tagged, root)
        if problem is not None and any(isinstance(k, str) and SECRET_KEY.search(k) for k in path):
            # A secret's value never reaches a message (CI logs are read by many).
            problem = dataclasses.replace(problem, message=re.sub(r"; got .*$", "; got *** (not shown)", problem.message))
        if problem is not None:
            problems.append(problem)
    return problems


#: Errors that say only "this is not of that type": one branch of a union that did not apply.
_TYPE_MISMATCH = {"string_type", "int_type", "float_type", "bool_type", "list_type", "dict_type", "model_type", "model_attributes_type", "none_required"}


def _another_branch_went_deeper(path: tuple[Any, ...], errors: list[dict[str, Any]], by_path: dict[tuple[Any, ...], Any]) -> bool:
    """Whether these are only type mismatches at ``path`` while another member of the union got
    further, to a place inside the value: that deeper error is the real mistake (as JSON Schema
    tools' "best match"). ``{name: db, condition: up}`` is not "expected a string" but a bad
    ``condition``."""
    if not all(e["type"] in _TYPE_MISMATCH for e in errors):
        return False
    return any(len(other) > len(path) and other[: len(path)] == path for other in by_path)


def _clean(raw: tuple[Any, ...], source: SourceMap, *, keep_last: bool) -> tuple[Any, ...]:
    """The location as a path in the document: pydantic also names union members and tags in
    it ('str', 'Dependency', 'kind=class'), which stand nowhere in the file."""
    path: list[Any] = []
    for i, part in enumerate(raw):
        last = i == len(raw) - 1
        if isinstance(part, str) and part.startswith(TAG_PREFIX):
            continue
        candidate = (*path, part)
        if isinstance(part, int) or candidate in source.values or candidate in source.keys or (last and keep_last):
            path.append(part)
    return tuple(path)


def _one(
    path: tuple[Any, ...],
    errors: list[dict[str, Any]],
    source: SourceMap,
    kinds: dict[str, WorkerKind],
    tagged: dict[str, type[BaseModel]],
    root: type[BaseModel],
) -> Problem | None:
    err = errors[0]
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        key = str(path[-1])
        allowed = _allowed_keys(root, err["_raw"][:-1], tagged)
        return source.problem(path, "unknown-key", _unknown_key_message(key, allowed), key=True)
    if kind == "missing":
        return source.problem(path[:-1], "missing-key", f"missing required key {path[-1]!r}")
    if kind == "worker-kind":
        broken = kinds.get(value["type"]) if isinstance(value, dict) and isinstance(value.get("type"), str) else None
        if broken is not None and broken.error is not None:
            return None  # a kind whose package failed to load: reported at its `type` already
        # An unknown `type` is reported at its value; a missing or doubled kind key at the worker.
        at_type = isinstance(value, dict) and "type" in value and not any(k in value for k in ("class", "factory"))
        return source.problem((*path, "type") if at_type else path, "worker-kind", _worker_kind_message(value, kinds))
    if kind == "params-name":  # reported where the key is
        return source.problem((*path, "name"), "bad-params", err["msg"], key=True)
    if kind == "bus-type":
        if not isinstance(value, dict):
            return source.problem(path, "dict-type", f"expected a mapping of bus options, such as {{type: redis}}; got {_show(value)}")
        return source.problem((*path, "type"), "bus-type", _choice_message("bus type", value, BUS_KINDS))
    if len(errors) > 1:
        fitting = [e for e in errors if e["type"] not in _TYPE_MISMATCH]
        if len(fitting) == 1:
            # One member of the union took the value's type and still refused it: that is the
            # mistake ("at least 16 characters"), not "expected a string or a list".
            return source.problem(path, _code(fitting[0]["type"]), _message(fitting[0]))
        # One value, several rejections (a union): say what would have been right, once.
        expected = _unique(_expectation(e) for e in errors)
        if "a number" in expected and "an integer" in expected:
            expected.remove("an integer")
        expected = ["true/false" if e == "true or false" else e for e in expected]
        listed = expected[0] if len(expected) == 1 else f"{', '.join(expected[:-1])} or {expected[-1]}"
        return source.problem(path, "bad-value", f"expected {listed}; got {_show(value)}")
    return source.problem(path, _code(kind), _message(err))


def _expectation(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    if kind == "literal_error":
        return "one of " + str((err.get("ctx") or {}).get("expected", "")).replace("'", "")
    return _pattern_message(err) or str(err["msg"]).lower()


# pydantic's bound errors: the key of the bound in their context, and how to say it.
_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "of at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "of at most"),
}


def _message(err: dict[str, Any]) -> str:
    kind, value = err["type"], err.get("input")
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}; got {_show(value)}{_why(kind, value)}"
    if kind == "literal_error":
        expected = str((err.get("ctx") or {}).get("expected", "")).replace("'", "")
        return f"expected {expected}; got {_show(value)}{_why(kind, value)}"
    if kind in ("too_short", "too_long", "string_too_short", "string_too_long"):
        ctx = err.get("ctx") or {}
        bound = ctx.get("min_length") if kind.endswith("too_short") else ctx.get("max_length")
        what = "character" if isinstance(value, str) else "item"
        message = f"expected at {'least' if kind.endswith('too_short') else 'most'} {bound} {what}{'' if bound == 1 else 's'}"
        return f"{message}; got {_show(value)}"
    if kind in _BOUNDS:
        bound = (err.get("ctx") or {}).get(_BOUNDS[kind][0])
        return f"expected a number {_BOUNDS[kind][1]} {bound}; got {_show(value)}"
    message = _pattern_message(err) or str(err["msg"]).removeprefix("Value error, ")
    # A whole mapping or list is the place, not the value: saying it again helps nobody.
    return message if "got " in message or isinstance(value, (dict, list)) else f"{message}; got {_show(value)}"


def _why(kind: str, value: Any) -> str:
    """Why a string is not the boolean or number it looks like."""
    if not isinstance(value, str):
        return ""
    read = parse_scalar(value.strip())
    if kind.startswith("bool") and value.strip().lower() in ("yes", "no", "on", "off", "y", "n"):
        return " (YAML 1.2 reads only true and false as booleans)"
    if not isinstance(read, str) and read is not None:
        return " (a string: write it without quotes)"
    return ""


def _pattern_message(err: dict[str, Any]) -> str | None:
    if err["type"] != "string_pattern_mismatch":
        return None
    pattern = (err.get("ctx") or {}).get("pattern")
    if pattern == IMPORT_PATTERN:
        return "expected an import path `module:attribute`, such as `myapp.workers:Printer`"
    if pattern == NAME_PATTERN:
        return "expected a name of letters, digits, '_', '#', '@' or '-' (at most 128, not starting with '#', '@' or '-')"
    if pattern == ADDRESS_PATTERN:
        return "expected HOST:PORT, such as 127.0.0.1:9100"
    if pattern == URL_PATTERN:
        return "expected a redis://, rediss:// or unix:// URL, such as redis://127.0.0.1:6379/0"
    if pattern == CHANNEL_PATTERN:
        return "expected a channel name of 1 to 128 letters, digits, '_', '.', ':' or '-'"
    return None


def _code(kind: str) -> str:
    # Strict checking reports `bool_type` where lax checking said `bool_parsing`: one code for both.
    kind = {"bool_type": "bool_parsing", "int_type": "int_parsing", "float_type": "float_parsing"}.get(kind, kind)
    return {"literal_error": "bad-choice", "string_pattern_mismatch": "bad-format"}.get(kind, kind.replace("_", "-"))


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _show(value: Any, limit: int = 60) -> str:
    """A value as it reads in YAML where that differs from Python (null, true, false)."""
    text = {None: "null", True: "true", False: "false"}.get(value, None) if isinstance(value, (bool, type(None))) else None
    text = text or repr(value)
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


def _worker_kind_message(value: Any, kinds: dict[str, WorkerKind]) -> str:
    if not isinstance(value, dict):
        return f"expected a worker mapping with `name` and one of `class`, `factory` or `type`; got {_show(value)}"
    present = [k for k in WORKER_KIND_KEYS if k in value]
    if not present:
        return "the worker needs one of `class` (a BaseWorker subclass), `factory` (a function) or a `type`"
    if len(present) > 1:
        return f"the worker has {' and '.join(f'`{k}`' for k in present)}; a worker is exactly one of `class`, `factory` or `type`"
    hint = "" if kinds is not BUILTIN else " (kinds from installed packages are looked up too)"
    return _choice_message("worker type", value["type"], [k for k, v in kinds.items() if v.model is not None]) + hint


def _allowed_keys(root: type[BaseModel], loc: tuple[Any, ...], tagged: dict[str, type[BaseModel]]) -> list[str]:
    """The keys the model at ``loc`` accepts (aliases), following lists, dicts and union tags."""
    current: Any = root
    for part in loc:
        if isinstance(part, str) and part.startswith(TAG_PREFIX):
            current = tagged.get(part, current)
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
        if issubclass(current, Topology):
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
