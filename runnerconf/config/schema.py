"""The JSON Schema (draft 2020-12) of topology files, generated from the models.

Shaped for the tools teams already run (check-jsonschema, yaml-language-server, editors):

* a worker's kind is chosen by its ``class``, ``factory`` or ``type`` key, and a bus's by its
  ``type``, with ``if``/``then``: a validator reports the mistake in the branch the file meant
  ("restart must be one of no, on-failure, always"), not that no branch fits;
* ``${VAR}`` is accepted where a boolean, a number, a choice or a patterned string is expected
  (the value is only known once interpolated, when runnerconf checks it), and unions are told
  apart by ``if``/``else`` on null, ``${VAR}`` and JSON type, so that the error shown for a
  wrong value is the real one (see :func:`_shape`);
* regular expressions carry ``format: regex``; properties carry a description and no title
  (a hover shows each once).

The committed copy (built-in kinds only) lives at ``schema/topology.schema.json``; a test keeps it
equal to :func:`topology_schema` ``(installed=False)``.
"""

from __future__ import annotations

import json
from typing import Any

from runnerconf.config.kinds import BUILTIN, WorkerKind, installed_kinds
from runnerconf.config.models import BUS_KINDS, topology_model

__all__ = ["INTERPOLATION_PATTERN", "SCHEMA_ID", "schema_json", "topology_schema"]

SCHEMA_ID = "urn:runnerconf:schema:topology:1"
#: Strings holding a ``${VAR}`` are accepted where a boolean, a number, a choice or a patterned
#: string is expected: the value is only known once interpolated, when the models check it.
INTERPOLATION_PATTERN = r"\$\{[A-Za-z_][A-Za-z0-9_]*([:]?[-?][^}]*)?\}"
_KIND_KEYS = ("class", "factory", "type")


def topology_schema(*, installed: bool = True) -> dict[str, Any]:
    """The schema as a dict: with a branch for each installed worker kind, or (``installed=False``)
    for the built-in kinds only."""
    kinds = installed_kinds() if installed else BUILTIN
    usable = {n: k for n, k in kinds.items() if k.model is not None}
    schema = topology_model(usable).model_json_schema(by_alias=True, mode="validation")
    defs = schema["$defs"]
    worker = _worker_schema(usable, defs)
    for holder in (schema["properties"]["workers"], _section(defs)["properties"]["workers"]):
        holder["items"] = worker
    schema["properties"]["bus"] = {**_bus_schema(defs), "description": schema["properties"]["bus"].get("description", "")}
    schema = _shape(schema, defs)
    schema = _allow_extensions(_drop_titles(schema))
    runner_ref = schema["properties"]["runner"]
    schema["properties"]["PipelineRunner"] = {
        **{k: v for k, v in runner_ref.items() if k != "description"},
        "description": "Deprecated spelling of `runner`.",
        "deprecated": True,
    }
    # A stream resumes each runner by its name (runners in `runners` always have one).
    schema["allOf"] = [
        {
            "if": {"required": ["bus"], "properties": {"bus": {"required": ["delivery"], "properties": {"delivery": {"const": "stream"}}}}},
            "then": {"anyOf": [{"required": ["runners"]}, {"required": ["runner"], "properties": {"runner": {"required": ["name"]}}}]},
        }
    ]
    # One runner (runner + workers) or several (runners), and one spelling of `runner`.
    schema["not"] = {
        "anyOf": [
            {"required": ["runner", "PipelineRunner"]},
            {"required": ["runners", "runner"]},
            {"required": ["runners", "PipelineRunner"]},
            {"required": ["runners", "workers"]},
        ]
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_json(*, installed: bool = True) -> str:
    """The schema as the text committed to ``schema/topology.schema.json``."""
    return json.dumps(topology_schema(installed=installed), indent=2, sort_keys=False) + "\n"


def _section(defs: dict[str, Any]) -> dict[str, Any]:
    return next(v for k, v in defs.items() if k.startswith("RunnerSection"))


def _ref(model: type, defs: dict[str, Any]) -> str:
    """The $defs key pydantic gave ``model``."""
    for key in (model.__name__, model.model_config.get("title")):  # type: ignore[attr-defined]
        if key in defs:
            return f"#/$defs/{key}"
    raise KeyError(model.__name__)  # pragma: no cover


def _worker_schema(kinds: dict[str, WorkerKind], defs: dict[str, Any]) -> dict[str, Any]:
    """One worker mapping: ``name`` and exactly one kind key; the kind key picks the model."""
    from runnerconf.config.worker_models import ClassWorkerConfig, FactoryWorkerConfig

    # Each `if` says "type": "object" too: `required` holds for anything that is not a mapping,
    # and a `null` worker should be one error, not one per branch.
    branches: list[dict[str, Any]] = [
        {"if": {"type": "object", "required": ["class"]}, "then": {"$ref": _ref(ClassWorkerConfig, defs)}},
        {"if": {"type": "object", "required": ["factory"]}, "then": {"$ref": _ref(FactoryWorkerConfig, defs)}},
    ]
    for name, kind in kinds.items():
        branches.append(
            {
                "if": {"type": "object", "required": ["type"], "properties": {"type": {"const": name}}},
                "then": {"$ref": _ref(kind.model, defs)},  # type: ignore[arg-type]
            }
        )
    branches.append({"if": {"type": "object", "required": ["type"]}, "then": {"properties": {"type": {"enum": sorted(kinds)}}}})
    return {
        "type": "object",
        "description": "A worker: `name` and exactly one of `class` (a BaseWorker subclass), `factory` (a function) or `type` (a worker kind).",
        "required": ["name"],
        "oneOf": [{"type": "object", "required": [k]} for k in _KIND_KEYS],
        "allOf": branches,
    }


def _bus_schema(defs: dict[str, Any]) -> dict[str, Any]:
    """The bus: ``type`` picks the model (no ``type`` is the in-process bus)."""
    branches: list[dict[str, Any]] = [
        {"if": {"type": "object", "required": ["type"], "properties": {"type": {"const": name}}}, "then": {"$ref": _ref(model, defs)}}
        for name, model in BUS_KINDS.items()
    ]
    branches.append({"if": {"type": "object", "not": {"required": ["type"]}}, "then": {"$ref": _ref(BUS_KINDS["async_queue"], defs)}})
    branches.append({"if": {"type": "object", "required": ["type"]}, "then": {"properties": {"type": {"enum": list(BUS_KINDS)}}}})
    return {"type": "object", "allOf": branches}


#: Keys whose values are data, not schemas: never reshaped.
_DATA_KEYS = frozenset({"default", "examples", "const", "enum", "required"})
_META_KEYS = ("title", "description", "default", "examples", "deprecated")
_PLACEHOLDER = {"type": "string", "pattern": INTERPOLATION_PATTERN}
_NULL = {"type": "null"}


def _shape(node: Any, defs: dict[str, Any]) -> Any:
    """Unions as JSON Schema tools report them well, with ``${VAR}`` accepted where it may stand.

    pydantic writes ``X | None`` and our placeholders as ``anyOf``; for a value that fits no
    member, check-jsonschema and editors then report the member least like it ("'(' is not of
    type 'null'", "2 is not of type 'string'"). Here the members are told apart by ``if``/``else``
    instead: null and ``${VAR}`` are let through by an ``if``, and the members by their JSON type,
    so that a wrong value meets exactly one schema and its error is the real one.
    """
    if isinstance(node, list):
        return [_shape(x, defs) for x in node]
    if not isinstance(node, dict):
        return node
    union = next((k for k in ("anyOf", "oneOf") if k in node and set(node) - set(_META_KEYS) == {k}), None)
    if union is not None:
        members = _flatten(node[union])
        meta = {k: node[k] for k in _META_KEYS if k in node}
    elif _takes_placeholder(node):
        meta = {k: node[k] for k in _META_KEYS if k in node}
        members = [{k: v for k, v in node.items() if k not in _META_KEYS}]
    else:
        return {k: v if k in _DATA_KEYS else _shape(v, defs) for k, v in node.items()}
    union = union or "anyOf"
    escapes: list[dict[str, Any]] = []
    cores: list[dict[str, Any]] = []
    for member in members:
        if member == _NULL:
            escapes.append(_NULL)
        elif member == _PLACEHOLDER:
            continue
        else:
            cores.append({k: v if k in _DATA_KEYS else _shape(v, defs) for k, v in member.items()})
    if any(_takes_placeholder(c) for c in members if c not in (_NULL, _PLACEHOLDER)):
        escapes.append(_PLACEHOLDER)
    core = _by_type(cores, defs, union)
    if not escapes:
        return {**core, **meta} if "if" not in core else {**meta, **core}
    if _PLACEHOLDER in escapes and (core.get("type") == "string" and ("enum" in core or "const" in core) or core == {"type": "boolean"}):
        # A choice or a boolean stays `anyOf` with the placeholder, so that editors offer its
        # values; tools still report the choice ("'maybe' is not one of [...]") or the type
        # ("'yes' is not of type 'boolean'"), since their errors rank above a pattern's.
        core = {"anyOf": [core, _PLACEHOLDER]}
        escapes = [e for e in escapes if e is not _PLACEHOLDER]
        if not escapes:
            return {**meta, **core}
    guard = escapes[0] if len(escapes) == 1 else {"anyOf": escapes}
    return {**meta, "if": guard, "else": core}


def _flatten(members: list[Any]) -> list[Any]:
    out: list[Any] = []
    for m in members:
        if isinstance(m, dict) and "anyOf" in m and set(m) - set(_META_KEYS) == {"anyOf"}:
            out.extend(_flatten(m["anyOf"]))
        else:
            out.append(m)
    return out


def _takes_placeholder(node: dict[str, Any]) -> bool:
    """Where a ``${VAR}`` may stand for the value: booleans, numbers, choices, patterned strings."""
    typ = node.get("type")
    return typ in ("boolean", "integer", "number") or (typ == "string" and ("pattern" in node or "enum" in node)) or ("const" in node and bool(typ))


def _json_type(node: dict[str, Any], defs: dict[str, Any]) -> str | None:
    typ = node.get("type")
    if typ is None and isinstance(node.get("$ref"), str):
        typ = defs.get(node["$ref"].rsplit("/", 1)[-1], {}).get("type")
    return typ if isinstance(typ, str) else None


def _by_type(cores: list[dict[str, Any]], defs: dict[str, Any], union: str = "anyOf") -> dict[str, Any]:
    """One schema for these members: itself if one; else an ``if``/``then`` chain on their JSON
    types ending in a plain type error, where their types differ (then ``anyOf`` and ``oneOf``
    mean the same); else the ``union`` as it was."""
    if len(cores) == 1:
        return cores[0]
    types = [_json_type(c, defs) for c in cores]
    if None in types or len(set(types)) != len(types):
        return {union: cores}
    # `integer` is also a `number`: test it first.
    ordered = sorted(zip(types, cores), key=lambda tc: tc[0] != "integer")
    chain: dict[str, Any] = {"type": [t for t, _ in ordered]}
    for typ, core in reversed(ordered):
        chain = {"if": {"type": typ}, "then": core, "else": chain}
    return chain


def _allow_extensions(node: Any) -> Any:
    """``x-*`` keys wherever the models forbid unknown keys (the loader drops them: YAML anchors)."""
    if isinstance(node, list):
        return [_allow_extensions(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _allow_extensions(v) for k, v in node.items()}
    if out.get("additionalProperties") is False:
        out["patternProperties"] = {"^x-": {}}
    return out


def _drop_titles(node: Any, top: bool = True) -> Any:
    """Titles only on models (``$defs``), not on their properties: a hover shows the description once."""
    if isinstance(node, list):
        return [_drop_titles(x, False) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _untitled(prop) for name, prop in value.items()}
        else:
            out[key] = _drop_titles(value, False)
    return out


def _untitled(prop: Any) -> Any:
    prop = _drop_titles(prop, False)
    if isinstance(prop, dict):
        prop.pop("title", None)
        for alt in prop.get("anyOf", ()):
            if isinstance(alt, dict):
                alt.pop("title", None)
    return prop
