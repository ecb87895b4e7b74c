"""``--set PATH=VALUE`` overrides, applied to the plain data before validation.

PATH is dotted; list items holding a ``name`` are addressed by that name
(``workers.greeter.params.greeting``) or by index (``workers.0.name``). VALUE is read as a YAML
scalar or flow collection: ``true``, ``10s``, ``[a, b]``, ``{x: 1}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from runnerconf.config.errors import Location, Problem, format_path
from runnerconf.config.source import SourceMap

__all__ = ["Override", "apply_overrides", "parse_override"]


@dataclass(frozen=True, slots=True)
class Override:
    """One override: the dotted path split in parts, the parsed value and the text given."""

    parts: tuple[str, ...]
    value: Any
    text: str


def parse_override(text: str) -> Override:
    """Parse ``PATH=VALUE``; ValueError when it is not of that form."""
    path, sep, raw = text.partition("=")
    parts = tuple(path.strip().split("."))
    if not sep or not all(parts):
        raise ValueError(f"expected PATH=VALUE such as runner.auto_end=false, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ValueError(f"cannot read the value of {text!r} as YAML: {exc}") from exc
    return Override(parts, value, text)


def apply_overrides(data: dict[str, Any], overrides: Sequence[Override | str], source: SourceMap) -> list[Problem]:
    """Apply overrides in order; returns the problems (unknown worker, bad path)."""
    problems = []
    for item in overrides:
        override = parse_override(item) if isinstance(item, str) else item
        origin = Location(f"--set {override.text}", 1, 1)
        error = _apply(data, override, source, origin)
        if error is not None:
            problems.append(Problem(origin.file, 1, 1, ".".join(override.parts), "bad-override", error))
    return problems


def _apply(data: dict[str, Any], override: Override, source: SourceMap, origin: Location) -> str | None:
    parts = list(override.parts)
    if parts[0] == "PipelineRunner":
        parts[0] = "runner"
    node: Any = data
    path: list[str | int] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            index = _find(node, part)
            if index is None:
                names = [x.get("name") for x in node if isinstance(x, dict) and "name" in x]
                known = f" (known: {', '.join(map(str, names))})" if names else ""
                return f"no item {part!r} in {format_path(path) or 'the document'}{known}"
            key: str | int = index
        elif isinstance(node, dict):
            key = part
        else:
            return f"{format_path(path)} is a {type(node).__name__}, it has no {part!r}"
        path.append(key)
        if last:
            node[key] = override.value
        else:
            if isinstance(node, dict) and (key not in node or node[key] is None):
                node[key] = {}
            node = node[key]
    target = tuple(path)
    for table in (source.values, source.keys):
        for p in [p for p in table if p[: len(target)] == target]:
            del table[p]
    source.values[target] = origin
    source.keys[target] = origin
    return None


def _find(items: list[Any], part: str) -> int | None:
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == part:
            return i
    if part.isdigit() and int(part) < len(items):
        return int(part)
    return None


