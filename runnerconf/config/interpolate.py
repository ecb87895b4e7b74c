"""Environment variables in string values: ``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}``.

Also ``${VAR-default}`` / ``${VAR?message}`` (only when unset, not when empty) and ``$$`` for a
literal ``$``. A ``$`` followed by anything else is kept as is. Defaults and messages may contain
variables themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["InterpolationError", "Placeholder", "Substituted", "VariableUse", "interpolate", "placeholders"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(ValueError):
    """A variable is missing (or set empty where a value is required), or a ``${`` is malformed."""

    def __init__(self, message: str, code: str = "missing-variable") -> None:
        super().__init__(message)
        self.code = code


class Substituted(str):
    """A string that ``${VAR}`` substitution produced. Where a boolean, a number or a duration is
    expected it is read as a YAML 1.2 scalar (``true``, ``3``, ``1.5``), as if written there."""

    __slots__ = ()


class Placeholder(Substituted):
    """A ``${VAR}`` left as it is (``--no-interpolate``): taken as a well-typed value wherever the
    schema allows a variable, so that structure is checked without any variable set."""

    __slots__ = ()


def placeholders(text: str, uses: list[VariableUse] | None = None) -> str:
    """``text`` unchanged, as a :class:`Placeholder` when it holds a ``${...}`` (checked for syntax
    and recorded in ``uses``); ``${VAR:?message}`` does not fail."""
    if "${" not in text:
        return text
    interpolate(text, _Anything(), uses)  # syntax errors still count; missing values do not
    return Placeholder(text)


class _Anything(dict):  # type: ignore[type-arg]
    """An environment in which every variable is set (to the empty string)."""

    def get(self, key: str, default: object = None) -> str:  # type: ignore[override]
        return "x"


@dataclass(frozen=True, slots=True)
class VariableUse:
    """One use of a variable: its default (if any) and whether it must be set."""

    name: str
    default: str | None
    required: bool


def interpolate(text: str, environ: Mapping[str, str], uses: list[VariableUse] | None = None) -> str:
    """Substitute variables in ``text``; record each use in ``uses``."""
    if "$" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "$":
            j = text.find("$", i)
            j = n if j < 0 else j
            out.append(text[i:j])
            i = j
            continue
        nxt = text[i + 1] if i + 1 < n else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 2)
            out.append(_expand(text[i + 2 : end], environ, uses))
            i = end + 1
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise InterpolationError(f"unclosed '${{' in {text!r}; write '$$' for a literal '$'", "bad-variable")


def _expand(expr: str, environ: Mapping[str, str], uses: list[VariableUse] | None) -> str:
    m = _NAME.match(expr)
    if m is None:
        raise InterpolationError(
            f"invalid variable reference '${{{expr}}}': expected a name such as ${{PORT}}", "bad-variable"
        )
    name, rest = m.group(), expr[m.end() :]
    for op in (":-", "-", ":?", "?"):
        if rest.startswith(op):
            arg = rest[len(op) :]
            break
    else:
        if rest:
            raise InterpolationError(
                f"invalid variable reference '${{{expr}}}': after the name expected '}}', ':-', '-', ':?' or '?'",
                "bad-variable",
            )
        op, arg = "", ""
    value = environ.get(name)
    missing = value is None or (value == "" and op.startswith(":"))
    if uses is not None:
        uses.append(VariableUse(name, arg if op in (":-", "-") else None, op not in (":-", "-")))
    if op in (":-", "-"):
        return interpolate(arg, environ, uses) if missing else str(value)
    if missing:
        if op in (":?", "?"):
            detail = interpolate(arg, environ, uses) or "required"
            raise InterpolationError(f"variable {name} is {'empty' if value == '' else 'not set'}: {detail}")
        raise InterpolationError(f"variable {name} is not set and has no default (write ${{{name}:-default}})")
    return str(value)
