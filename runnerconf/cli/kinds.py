"""``runnerconf kinds``: the worker kinds installed, where they come from, and their params."""

from __future__ import annotations

import json
from typing import Any

import click


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def kinds(fmt: str) -> None:
    """List the worker kinds (`type:` values) this installation knows: built-in ones and those
    installed packages declare (entry points `runnerconf.workers`), with their params.

    \b
    Examples:
      runnerconf kinds
      runnerconf kinds --format json
    """
    from runnerconf.config.kinds import installed_kinds

    rows = [_describe(k) for k in installed_kinds().values()]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']}  ({row['source']})")
        click.echo(f"    worker: {row['worker']}")
        if row["error"]:
            click.echo(f"    unavailable: {row['error']}")
        for p in row["params"]:
            default = "" if p["required"] else f" = {p['default']!r}"
            click.echo(f"    {p['name']}: {p['type']}{default}{'  ' + p['description'] if p['description'] else ''}")


def _describe(kind: Any) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    model = kind.params
    if model is None and kind.model is not None and kind.builtin:
        # A built-in kind: its options are the keys of the worker mapping itself.
        from runnerconf.config.worker_models import WorkerBase

        model = kind.model
        skip = set(WorkerBase.model_fields) | {"type"}
    else:
        skip = set()
    if model is not None:
        schema = model.model_json_schema(by_alias=True)
        props, defs = schema.get("properties", {}), schema.get("$defs", {})
        for name, field in model.model_fields.items():
            if name in skip:
                continue
            key = field.alias or name
            params.append(
                {
                    "name": key,
                    "type": _type_of(props.get(key, {}), defs),
                    "required": field.is_required(),
                    "default": None if field.is_required() else _default(field),
                    "description": field.description or "",
                }
            )
    return {"name": kind.name, "source": kind.source, "worker": kind.worker, "error": kind.error, "params": params}


def _default(field: Any) -> Any:
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except Exception:
            return None
    else:
        value = field.default
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return value if isinstance(value, (str, int, float, bool, list, dict, type(None))) else str(value)


def _type_of(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    """A short name of a JSON Schema type: ``string``, ``integer``, ``no|on-failure|always``, ..."""
    if "enum" in prop:
        return "|".join(map(str, prop["enum"]))
    if "const" in prop:
        return repr(prop["const"])
    if "$ref" in prop:
        target = defs.get(prop["$ref"].rsplit("/", 1)[-1], {})
        return str(target.get("title", prop["$ref"].rsplit("/", 1)[-1]))
    if "anyOf" in prop:
        names = [_type_of(p, defs) for p in prop["anyOf"]]
        return " | ".join(dict.fromkeys(n for n in names if n != "null")) + (" | null" if "null" in names else "")
    kind = prop.get("type", "any")
    if isinstance(kind, list):
        return " | ".join(map(str, kind))
    if kind == "array":
        return f"list of {_type_of(prop.get('items', {}), defs)}"
    if kind == "object":
        return "mapping"
    return str(kind)


COMMANDS = [kinds]
