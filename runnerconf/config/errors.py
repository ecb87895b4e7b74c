"""``TopologyError``: every problem found in a topology, each with its place in the file."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal, NamedTuple

from runnerconf.utils.secrets import redact_text

__all__ = ["Location", "Problem", "TopologyError", "add_new", "escape_controls", "format_path"]

_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\n]")


def escape_controls(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``): text from a file or a peer
    never reaches a terminal as raw escape sequences."""
    return _CONTROLS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)

Severity = Literal["error", "warning"]


class Location(NamedTuple):
    """A place in a source: 1-based line and column (a tuple: one is made per value read)."""

    file: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a topology.

    Attributes:
        file, line, column: Where it is (1-based line and column).
        path: Where in the document, e.g. ``workers[2].stop_timeout`` ("" for the whole file).
        code: A stable kebab-case identifier (``unknown-key``, ``missing-variable``, ...).
        message: The bad value and what was expected.
        severity: ``error`` or ``warning`` (deprecations).
    """

    file: str
    line: int
    column: int
    path: str
    code: str
    message: str
    severity: Severity = "error"

    def __post_init__(self) -> None:
        # What a problem shows comes from the file or the command line: no raw control
        # characters, and no password of a URL.
        for name in ("file", "path", "message"):
            value = getattr(self, name)
            clean = redact_text(value)
            if _CONTROLS.search(clean):
                clean = escape_controls(clean)
            if clean is not value:
                object.__setattr__(self, name, clean)

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {where}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TopologyError(Exception):
    """A topology cannot be used. ``problems`` lists every problem found, errors and warnings."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(problems, key=lambda p: (p.file, p.line, p.column, p.path))
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid topology")

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def add_new(problems: list[Problem], more: Iterable[Problem]) -> None:
    """Add ``more`` to ``problems``, leaving out those at a place already reported (a missing
    variable or a bad override is not reported again by the check that comes after it)."""
    seen = {p.path for p in problems}
    problems.extend(p for p in more if p.path not in seen)


def format_path(path: Iterable[str | int]) -> str:
    """``("workers", 2, "params", "x")`` -> ``workers[2].params.x``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
