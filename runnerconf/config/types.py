"""The scalar types of topology options, each with its JSON Schema and its rules for variables.

Values are checked strictly: a quoted ``"5"`` is not the number 5 and ``"false"`` is not false,
as in the JSON Schema and every YAML 1.2 tool. Two things are read differently:

* a string that ``${VAR}`` substitution produced (:class:`~runnerconf.config.interpolate.Substituted`)
  is read as a YAML 1.2 scalar where a boolean, a number or a choice is expected;
* a ``${VAR}`` left as it is by ``--no-interpolate`` (a :class:`Placeholder`) stands for a value of
  the expected type, so that the structure is checked without any variable set.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema, WrapValidator
from pydantic_core import PydanticCustomError

from runnerconf.config.interpolate import Placeholder, Substituted
from runnerconf.config.source import parse_scalar

__all__ = [
    "ADDRESS_PATTERN",
    "IMPORT_PATTERN",
    "NAME_PATTERN",
    "Address",
    "Duration",
    "Flag",
    "ImportString",
    "Name",
    "Number",
    "PositiveDuration",
    "Params",
    "Regex",
    "Whole",
    "parse_duration",
    "scalar",
    "text",
]

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_#@-]{0,127}$"
IMPORT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
ADDRESS_PATTERN = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]*):[0-9]{1,5}$"

# At most 15 digits before the point and 9 after: every duration is finite, and the schema's
# pattern says the same.
_DURATION_TEXT = r"^\s*(\d{1,15}(\.\d{1,9})?|\.\d{1,9})\s*(ms|s|m|h)?\s*$"
# The same, with a digit other than 0 somewhere in the number.
_POSITIVE_TEXT = r"^(?=\s*[0-9.]*[1-9])" + _DURATION_TEXT[1:]
_DURATION = re.compile(_DURATION_TEXT)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def scalar(value: Any, handler: Any) -> Any:
    """For booleans, numbers and choices: a substitution is read as a YAML 1.2 scalar; a
    placeholder passes as it is."""
    if isinstance(value, Placeholder):
        return value
    if isinstance(value, Substituted):
        value = parse_scalar(str(value).strip())
    return handler(value)


def whole(value: Any, handler: Any) -> Any:
    """For integers: as :func:`scalar`, and a float with no fraction (``5.0``) is the integer
    it equals, as JSON Schema's ``integer`` (and so every editor and checker) reads it."""
    if isinstance(value, Placeholder):
        return value
    if isinstance(value, Substituted):
        value = parse_scalar(str(value).strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return handler(value)


def text(value: Any, handler: Any) -> Any:
    """For strings with a pattern: a placeholder passes as it is; a substitution is a string."""
    if isinstance(value, Placeholder):
        return value
    if isinstance(value, Substituted):
        value = str(value)
    return handler(value)


def parse_duration(value: Any) -> Any:
    """``500ms``, ``10s``, ``2m``, ``1h`` or a number of seconds -> seconds (float)."""
    if isinstance(value, Placeholder):
        return value
    if isinstance(value, bool):
        raise PydanticCustomError("duration", "expected a duration such as 500ms, 10s or 2m, got {value}", {"value": repr(value)})
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise PydanticCustomError("duration", "expected a finite duration such as 500ms, 10s or 2m, got {value}", {"value": repr(value)})
        if value < 0:
            raise PydanticCustomError("duration", "a duration cannot be negative, got {value}", {"value": repr(value)})
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(3)]
    raise PydanticCustomError(
        "duration", "expected a duration such as 500ms, 10s, 2m or a number of seconds, got {value}", {"value": repr(value)}
    )


def _duration(value: Any, handler: Any) -> Any:
    return value if isinstance(value, Placeholder) else handler(parse_duration(value))


def _positive_duration(value: Any, handler: Any) -> Any:
    seconds = _duration(value, handler)
    if isinstance(seconds, float) and seconds <= 0:
        raise PydanticCustomError("duration", "expected a duration of more than 0, such as 500ms or 10s; got {value}", {"value": repr(value)})
    return seconds


def _regex(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Placeholder):
        try:
            re.compile(value)
        except re.error as exc:
            raise PydanticCustomError(
                "regex", "invalid regular expression {value}: {error}", {"value": repr(value), "error": str(exc)}
            ) from exc
    return value


# `maximum` refuses YAML's .inf (JSON has no infinity, and no keyword refuses .nan).
_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": sys.float_info.max},
        {"type": "string", "pattern": _DURATION_TEXT},
    ],
    "examples": ["500ms", "10s", "2m", 30],
}
_POSITIVE_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0, "maximum": sys.float_info.max},
        {"type": "string", "pattern": _POSITIVE_TEXT},
    ],
    "examples": ["500ms", "10s", "2m", 30],
}

#: Seconds, written ``500ms``, ``10s``, ``2m``, ``1h`` or as a number.
Duration = Annotated[float, WrapValidator(_duration), WithJsonSchema(_DURATION_SCHEMA)]
#: A duration of more than 0 (an interval, a first delay).
PositiveDuration = Annotated[float, WrapValidator(_positive_duration), WithJsonSchema(_POSITIVE_DURATION_SCHEMA)]
#: true or false.
Flag = Annotated[bool, WrapValidator(scalar)]
#: An integer (``Field(ge=...)`` bounds it).
Whole = Annotated[int, WrapValidator(whole)]
#: A finite number.
Number = Annotated[float, WrapValidator(scalar)]
Name = Annotated[str, Field(pattern=NAME_PATTERN, examples=["greeter"]), WrapValidator(text)]
#: ``HOST:PORT`` (``[::1]:9100`` for IPv6; an empty host listens everywhere).
Address = Annotated[str, Field(pattern=ADDRESS_PATTERN, examples=["127.0.0.1:9100"]), WrapValidator(text)]
ImportString = Annotated[
    str,
    Field(
        pattern=IMPORT_PATTERN,
        description="Import path `module:attribute` (the attribute may be dotted).",
        examples=["myapp.workers:Printer"],
    ),
    WrapValidator(text),
]
#: A regular expression (checked to compile).
Regex = Annotated[str, BeforeValidator(_regex), Field(json_schema_extra={"format": "regex"})]
Params = Annotated[
    dict[str, Any],
    Field(description="Keyword arguments passed to the class, factory or processor."),
]
