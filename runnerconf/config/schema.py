"""The JSON Schema (draft 2020-12) of topology files, generated from the models.

Shaped for the tools teams already run (check-jsonschema, yaml-language-server, editors):

* a worker's kind is chosen by its ``class``, ``factory`` or ``type`` key, and a bus's by its
  ``type``, with ``if``/``then``: a validator reports the mistake in the branch the file meant
  ("restart must be one of no, on-failure, always"), not that no branch fits;
* ``${VAR}`` is accepted where a boolean, a number, a choice or a patterned string is expected
  (the value is only known once interpolated, when runnerconf checks it);
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
    schema = _allow_interpolation(schema)
    schema = _drop_titles(schema)
    runner_ref = schema["properties"]["runner"]
    schema["properties"]["PipelineRunner"] = {
        **{k: v for k, v in runner_ref.items() if k != "description"},
        "description": "Deprecated spelling of `runner`.",
        "deprecated": True,
    }
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

    branches: list[dict[str, Any]] = [
        {"if": {"required": ["class"]}, "then": {"$ref": _ref(ClassWorkerConfig, defs)}},
        {"if": {"required": ["factory"]}, "then": {"$ref": _ref(FactoryWorkerConfig, defs)}},
    ]
    for name, kind in kinds.items():
        branches.append(
            {
                "if": {"required": ["type"], "properties": {"type": {"const": name}}},
                "then": {"$ref": _ref(kind.model, defs)},  # type: ignore[arg-type]
            }
        )
    branches.append({"if": {"required": ["type"]}, "then": {"properties": {"type": {"enum": sorted(kinds)}}}})
    return {
        "type": "object",
        "description": "A worker: `name` and exactly one of `class` (a BaseWorker subclass), `factory` (a function) or `type` (a worker kind).",
        "required": ["name"],
        "oneOf": [{"required": [k]} for k in _KIND_KEYS],
        "allOf": branches,
    }


def _bus_schema(defs: dict[str, Any]) -> dict[str, Any]:
    """The bus: ``type`` picks the model (no ``type`` is the in-process bus)."""
    branches: list[dict[str, Any]] = [
        {"if": {"required": ["type"], "properties": {"type": {"const": name}}}, "then": {"$ref": _ref(model, defs)}}
        for name, model in BUS_KINDS.items()
    ]
    branches.append({"if": {"not": {"required": ["type"]}}, "then": {"$ref": _ref(BUS_KINDS["async_queue"], defs)}})
    branches.append({"if": {"required": ["type"]}, "then": {"properties": {"type": {"enum": list(BUS_KINDS)}}}})
    return {"type": "object", "allOf": branches}


def _allow_interpolation(node: Any) -> Any:
    if isinstance(node, list):
        return [_allow_interpolation(x) for x in node]
    if not isinstance(node, dict):
        return node
    node = {k: _allow_interpolation(v) for k, v in node.items()}
    typ = node.get("type")
    if typ in ("boolean", "integer", "number") or (typ == "string" and ("pattern" in node or "enum" in node)) or "const" in node and typ:
        keep = {k: node.pop(k) for k in ("title", "description", "default", "examples") if k in node}
        return {"anyOf": [node, {"type": "string", "pattern": INTERPOLATION_PATTERN}], **keep}
    return node


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
