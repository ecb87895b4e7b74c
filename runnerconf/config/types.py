"""The scalar types of topology options, each with its JSON Schema and its rules for variables
(the rules themselves are in :mod:`runnerconf.config.checks`).

Values are checked strictly: a quoted ``"5"`` is not the number 5 and ``"false"`` is not false,
as in the JSON Schema and every YAML 1.2 tool. Two things are read differently:

* a string that ``${VAR}`` substitution produced (:class:`~runnerconf.config.interpolate.Substituted`)
  is read as a YAML 1.2 scalar where a boolean, a number or a choice is expected;
* a ``${VAR}`` left as it is by ``--no-interpolate`` (a :class:`Placeholder`) stands for a value of
  the expected type, so that the structure is checked without any variable set.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

from annotated_types import Ge
from pydantic import BeforeValidator, Field, WithJsonSchema, WrapValidator

from runnerconf.config.checks import DURATION_TEXT, POSITIVE_DURATION_TEXT, duration, parse_duration, positive_duration, regex, scalar, text, whole

__all__ = [
    "ADDRESS_PATTERN",
    "IMPORT_PATTERN",
    "NAME_PATTERN",
    "Address",
    "Count",
    "CountOrZero",
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

# `maximum` refuses YAML's .inf (JSON has no infinity, and no keyword refuses .nan).
_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": sys.float_info.max},
        {"type": "string", "pattern": DURATION_TEXT},
    ],
    "examples": ["500ms", "10s", "2m", 30],
}
_POSITIVE_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0, "maximum": sys.float_info.max},
        {"type": "string", "pattern": POSITIVE_DURATION_TEXT},
    ],
    "examples": ["500ms", "10s", "2m", 30],
}

#: Seconds, written ``500ms``, ``10s``, ``2m``, ``1h`` or as a number.
Duration = Annotated[float, WrapValidator(duration), WithJsonSchema(_DURATION_SCHEMA)]
#: A duration of more than 0 (an interval, a first delay).
PositiveDuration = Annotated[float, WrapValidator(positive_duration), WithJsonSchema(_POSITIVE_DURATION_SCHEMA)]
#: true or false.
Flag = Annotated[bool, WrapValidator(scalar)]
#: An integer. A bounded one puts its bound inside, before the rule (as :data:`Count` does): a
#: ``${VAR}`` that --no-interpolate leaves stands for a value within the bound, where a bound
#: given with ``Field(ge=...)`` would be applied to the placeholder itself.
Whole = Annotated[int, WrapValidator(whole)]
#: An integer of at least 1.
Count = Annotated[int, Ge(1), WrapValidator(whole)]
#: An integer of at least 0.
CountOrZero = Annotated[int, Ge(0), WrapValidator(whole)]
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
Regex = Annotated[str, BeforeValidator(regex), Field(json_schema_extra={"format": "regex"})]
Params = Annotated[
    dict[str, Any],
    Field(description="Keyword arguments passed to the class, factory or processor."),
]
