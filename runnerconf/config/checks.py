"""The rules the topology models run on values: plain functions, and small callable classes.

The models (:mod:`~runnerconf.config.types`, :mod:`~runnerconf.config.worker_models`,
:mod:`~runnerconf.config.models`) name these in their fields; they are kept apart, importing
nothing of pydantic (its errors come from pydantic-core), so that a validator kept by
:mod:`runnerconf.config.validator_cache` can run them without the models: ``runnerconf validate``
then answers for a valid file without importing pydantic at all. Where a rule needs a model (to
make one, or to recognise one), the model is an argument, never an import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from pydantic_core import PydanticCustomError

from runnerconf.config.interpolate import Placeholder, Substituted
from runnerconf.config.source import parse_scalar

__all__ = [
    "DURATION_TEXT",
    "POSITIVE_DURATION_TEXT",
    "TAG_PREFIX",
    "WORKER_KIND_KEYS",
    "Defaults",
    "KindTag",
    "ProcessorTag",
    "WorkerTag",
    "command",
    "duration",
    "names_to",
    "no_name",
    "one_probe",
    "parse_duration",
    "positive_duration",
    "redis_options_fit_the_wire",
    "regex",
    "scalar",
    "text",
    "whole",
]

#: Tags of tagged unions start with this; they are dropped from error paths.
TAG_PREFIX = "kind="
#: Keys that choose a worker's kind; a worker has exactly one.
WORKER_KIND_KEYS = ("class", "factory", "type")

# At most 15 digits before the point and 9 after: every duration is finite, and the schema's
# pattern says the same.
DURATION_TEXT = r"^\s*(\d{1,15}(\.\d{1,9})?|\.\d{1,9})\s*(ms|s|m|h)?\s*$"
#: The same, with a digit other than 0 somewhere in the number.
POSITIVE_DURATION_TEXT = r"^(?=\s*[0-9.]*[1-9])" + DURATION_TEXT[1:]
_DURATION = re.compile(DURATION_TEXT)
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


def duration(value: Any, handler: Any) -> Any:
    """A duration, in seconds (a placeholder passes as it is)."""
    return value if isinstance(value, Placeholder) else handler(parse_duration(value))


def positive_duration(value: Any, handler: Any) -> Any:
    """A duration of more than 0."""
    seconds = duration(value, handler)
    if isinstance(seconds, float) and seconds <= 0:
        raise PydanticCustomError("duration", "expected a duration of more than 0, such as 500ms or 10s; got {value}", {"value": repr(value)})
    return seconds


def regex(value: Any) -> Any:
    """A regular expression that compiles."""
    if isinstance(value, str) and not isinstance(value, Placeholder):
        try:
            re.compile(value)
        except re.error as exc:
            raise PydanticCustomError(
                "regex", "invalid regular expression {value}: {error}", {"value": repr(value), "error": str(exc)}
            ) from exc
    return value


def names_to(model: Any, value: list[Any]) -> list[Any]:
    """A bare name in a list of dependencies is ``model(name=NAME)`` (condition: ready)."""
    return [model(name=v) if isinstance(v, str) else v for v in value]


def no_name(value: dict[str, Any]) -> dict[str, Any]:
    """Params of a class or factory worker: ``name`` is the worker's own key."""
    if "name" in value:
        raise PydanticCustomError("params-name", "params must not set 'name': the worker's `name` key sets it")
    return value


def command(value: Any, handler: Any) -> Any:
    """A command: a non-empty string (for /bin/sh) or a list of strings and numbers (argv)."""
    # A `${VAR}` placeholder (--no-interpolate) stays one, so that --imports knows it is unknown.
    if isinstance(value, Placeholder):
        return value
    if isinstance(value, str) and value.strip():
        return handler(value)
    if isinstance(value, list) and value and all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in value):
        argv = [a if isinstance(a, str) else str(a) for a in value]
        return [a if isinstance(a, Placeholder) else v for a, v in zip(argv, handler(argv))]
    raise PydanticCustomError(
        "command", "expected a command: a non-empty string (run by /bin/sh) or a list of strings (argv); got {value}", {"value": repr(value)}
    )


def one_probe(check: Any) -> Any:
    """A health check has exactly one probe."""
    if sum(x is not None for x in (check.exec, check.http, check.tcp)) != 1:
        raise PydanticCustomError("healthcheck", "a health check needs exactly one of exec, http and tcp")
    return check


def redis_options_fit_the_wire(bus: Any) -> Any:
    """The Redis bus options that go together (the schema's ``allOf`` says the same)."""
    if bus.data_types and bus.wire != "pipecat":
        raise PydanticCustomError("data-types", "data_types are pipecat message types: they need wire: pipecat")
    if bus.wire == "pipecat" and bus.delivery == "stream":
        raise PydanticCustomError("pipecat-wire", "pipecat's runners read pub/sub: wire: pipecat needs delivery: pubsub")
    if bus.wire == "pipecat" and (bus.secret is not None or bus.secret_file is not None):
        raise PydanticCustomError("pipecat-wire", "pipecat's runners cannot check signatures: wire: pipecat takes no secret")
    if bus.secret is not None and bus.secret_file is not None:
        raise PydanticCustomError("secret", "give secret or secret_file, not both")
    return bus


class _Cacheable:
    """A callable the validator cache may name: it is rebuilt from ``__reduce__``'s arguments."""

    __slots__ = ()
    cacheable = True

    def _key(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return type(self), self._key()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._key() == self._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self._key()))


class KindTag(_Cacheable):
    """The tag of a mapping chosen by one key (``type`` of a bus), with a default kind."""

    __slots__ = ("default", "key", "known")
    # pydantic-core names a callable discriminator by its __name__.
    __name__ = "kind_tag"

    def __init__(self, key: str, known: Iterable[str], default: str | None = None) -> None:
        self.key = key
        self.known = tuple(known)
        self.default = default

    def _key(self) -> tuple[Any, ...]:
        return self.key, self.known, self.default

    def __call__(self, value: Any) -> str | None:
        kind = value.get(self.key, self.default) if isinstance(value, dict) else getattr(value, self.key, None)
        return f"{TAG_PREFIX}{kind}" if isinstance(kind, str) and kind in self.known else None


class ProcessorTag(_Cacheable):
    """The tag of a processor: an import path, or a mapping (or a ``call_model``) with ``call``."""

    __slots__ = ("call_model",)
    __name__ = "processor_tag"

    def __init__(self, call_model: Any) -> None:
        self.call_model = call_model

    def _key(self) -> tuple[Any, ...]:
        return (self.call_model,)

    def __call__(self, value: Any) -> str | None:
        if isinstance(value, str):
            return f"{TAG_PREFIX}import"
        if isinstance(value, (dict, self.call_model)):
            return f"{TAG_PREFIX}call"
        return None


class WorkerTag(_Cacheable):
    """The tag of a worker mapping: its kind key (``class``, ``factory``), or for ``type`` a
    kind whose model is loaded; a worker model is tagged by its ``kind``."""

    __slots__ = ("loaded",)
    __name__ = "worker_tag"

    def __init__(self, loaded: Iterable[str]) -> None:
        self.loaded = tuple(sorted(loaded))

    def _key(self) -> tuple[Any, ...]:
        return (self.loaded,)

    def __call__(self, value: Any) -> str | None:
        if not isinstance(value, dict):
            kind = getattr(value, "kind", None)
            return f"{TAG_PREFIX}{kind}" if kind in ("class", "factory") or kind in self.loaded else None
        present = [k for k in WORKER_KIND_KEYS if k in value]
        if len(present) != 1:
            return None
        if present[0] == "type":
            kind = value["type"]
            return f"{TAG_PREFIX}{kind}" if isinstance(kind, str) and kind in self.loaded else None
        return f"{TAG_PREFIX}{present[0]}"


class Defaults(_Cacheable):
    """A default factory: ``model`` with every field at its default.

    The same as ``model()`` for the topology's models (defaults are not validated,
    ``validate_default`` is off, and they have no model validators), made with
    ``model_construct`` so that taking a default does not build that model's own validator.
    """

    __slots__ = ("model",)

    def __init__(self, model: Any) -> None:
        self.model = model

    def _key(self) -> tuple[Any, ...]:
        return (self.model,)

    def __call__(self) -> Any:
        return self.model.model_construct()

    def __repr__(self) -> str:
        return f"Defaults({self.model.__name__})"
