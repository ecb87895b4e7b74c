"""The JSON Schema (draft 2020-12) of topology files, generated from the models.

The committed copy lives at ``schema/topology.schema.json``; a test keeps it equal to this output.
"""

from __future__ import annotations

import json
from typing import Any

from runnerconf.config.models import Topology

__all__ = ["SCHEMA_ID", "INTERPOLATION_PATTERN", "schema_json", "topology_schema"]

SCHEMA_ID = "urn:runnerconf:schema:topology:1"
#: Strings holding a ``${VAR}`` are accepted where a boolean, a number, a choice or a patterned
#: string is expected: the value is only known once interpolated, when the models check it.
INTERPOLATION_PATTERN = r"\$\{[A-Za-z_][A-Za-z0-9_]*([:]?[-?][^}]*)?\}"


def topology_schema() -> dict[str, Any]:
    """The schema as a dict."""
    schema = Topology.model_json_schema(by_alias=True, mode="validation")
    schema = _allow_interpolation(schema)
    runner_ref = schema["properties"]["runner"]
    schema["properties"]["PipelineRunner"] = {
        **{k: v for k, v in runner_ref.items() if k not in ("description", "title")},
        "title": "PipelineRunner",
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
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }


def schema_json() -> str:
    """The schema as the text committed to ``schema/topology.schema.json``."""
    return json.dumps(topology_schema(), indent=2, sort_keys=False) + "\n"


def _allow_interpolation(node: Any) -> Any:
    if isinstance(node, list):
        return [_allow_interpolation(x) for x in node]
    if not isinstance(node, dict):
        return node
    node = {k: _allow_interpolation(v) for k, v in node.items()}
    typ = node.get("type")
    if typ in ("boolean", "integer", "number") or (typ == "string" and ("pattern" in node or "enum" in node)):
        keep = {k: node.pop(k) for k in ("title", "description", "default", "examples") if k in node}
        return {"anyOf": [node, {"type": "string", "pattern": INTERPOLATION_PATTERN}], **keep}
    return node
