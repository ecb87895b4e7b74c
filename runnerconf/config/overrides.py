"""``--set PATH=VALUE`` overrides, applied to the plain data before validation.

PATH is dotted; list items holding a ``name`` are addressed by that name
(``workers.greeter.params.greeting``) or by index (``workers.0.name``). VALUE is read as a YAML
1.2 scalar (``true``, ``3``, ``null``) or a flow collection (``[a, b]``, ``{x: 1}``), with the
rules and bounds of a topology file (no tags, no recursive aliases, bounded size and depth);
anything else is the string typed (``10s``, ``::``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import re

from runnerconf.config.errors import Location, Problem, TopologyError, format_path
from runnerconf.config.source import SourceMap, parse_scalar, read_value

__all__ = ["Override", "apply_overrides", "parse_override"]


@dataclass(frozen=True, slots=True)
class Override:
    """One override: the dotted path split in parts, the parsed value and the text given."""

    parts: tuple[str, ...]
    value: Any
    text: str


_SEGMENT = re.compile(r"^[A-Za-z0-9_#@-]{1,128}$")
#: Longest --set argument read.
MAX_OVERRIDE = 64 << 10


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def parse_override(text: str) -> Override:
    """Parse ``PATH=VALUE``; ValueError (saying what is wrong) when it is not of that form."""
    if len(text) > MAX_OVERRIDE:
        raise ValueError(f"a --set of {len(text):,} characters is too long (at most {MAX_OVERRIDE:,})")
    path, sep, raw = text.partition("=")
    parts = tuple(path.strip().split("."))
    if not sep or not all(parts):
        raise ValueError(f"expected PATH=VALUE such as runner.auto_end=false, got {_short(text)}")
    for part in parts:
        if not _SEGMENT.match(part):
            raise ValueError(f"{_short(part)} in {_short(path)} is not a key or a worker name (ASCII letters, digits, '_', '-', '#', '@')")
    return Override(parts, _value(raw, text), text)


def _value(raw: str, text: str) -> Any:
    # Scalars the way YAML 1.2 reads them (true, 3, 1.5, null), flow collections ([a, b], {x: 1});
    # anything else (":: ", "a: b", "#tag") stays the string that was typed.
    stripped = raw.strip()
    if not stripped:
        return ""
    if stripped[0] in "[{&*!":
        try:
            return read_value(stripped, f"--set {text}")
        except TopologyError as exc:
            reason = exc.problems[0].message if exc.problems else str(exc)
            raise ValueError(f"cannot read the value of {_short(text)}: {reason}") from exc
    value = parse_scalar(stripped)
    return value if isinstance(value, (bool, int, float)) or value is None else raw


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
                # A mapping the override creates stands at the override, not in the file.
                source.values[tuple(path)] = origin
                source.keys[tuple(path)] = origin
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


