"""Text views of a topology: its graph, its build plan, its variables, its normalised form."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any, Literal

import yaml

from runnerconf.utils.secrets import redact, redact_secrets
from runnerconf.config.build import Plan, ResolvedWorker
from runnerconf.config.interpolate import VariableUse
from runnerconf.config.models import (
    ClassWorkerConfig,
    CommandWorkerConfig,
    FactoryWorkerConfig,
    PipelineWorkerConfig,
    ProcessorCall,
    Topology,
    WorkerConfig,
)

__all__ = ["describe_worker", "normalised", "render_graph", "render_plan", "variables_table"]


def describe_worker(worker: WorkerConfig) -> str:
    """``pipeline``, ``class module:Class`` or ``factory module:function``, plus the kind's details."""
    if isinstance(worker, ClassWorkerConfig):
        return f"class {worker.class_}"
    if isinstance(worker, FactoryWorkerConfig):
        return f"factory {worker.factory}"
    return str(getattr(worker, "type", "?"))


def _edges(topology: Topology) -> list[tuple[str, str, str]]:
    edges = []
    for w in topology.all_workers():
        if w.parent is not None:
            edges.append((w.parent, w.name, "child"))
        send_to = getattr(w, "send_to", None)
        if send_to is not None:
            edges.append((w.name, send_to, "send_to"))
        for dep in w.depends_on:
            edges.append((w.name, dep.name, "depends_on"))
    return edges


def render_graph(topology: Topology, fmt: Literal["mermaid", "dot"] = "mermaid") -> str:
    """The workers as nodes, grouped by runner when there are several; parent -> child edges
    solid, ``send_to`` dashed, ``depends_on`` bold."""
    specs = topology.runner_specs()
    grouped = topology.runners is not None
    ids = {w.name: f"w{i}" for i, w in enumerate(topology.all_workers())}
    edges = _edges(topology)
    if fmt == "mermaid":
        lines = ["flowchart LR"]
        for r, spec in enumerate(specs):
            indent = "    " if grouped else "  "
            if grouped:
                lines.append(f'  subgraph r{r}["runner {_mermaid(spec.name or "")}"]')
            lines += [
                f'{indent}{ids[w.name]}["{_mermaid(w.name)}<br/><small>{_mermaid(describe_worker(w))}</small>"]'
                for _, w in spec.workers
            ]
            if grouped:
                lines.append("  end")
        arrows = {"child": "-->|child|", "send_to": "-.->|send_to|", "depends_on": "==>|depends_on|"}
        # An end that is no worker of the file is a `${VAR}` left as it is (--no-interpolate):
        # drawn once, as a rounded node.
        for name in dict.fromkeys(n for a, b, _ in edges for n in (a, b) if n not in ids):
            ids[name] = f"v{len(ids)}"
            lines.append(f'  {ids[name]}(["{_mermaid(name)}"])')
        for a, b, label in edges:
            lines.append(f"  {ids[a]} {arrows[label]} {ids[b]}")
        return "\n".join(lines) + "\n"
    lines = ["digraph topology {", "  rankdir=LR;", "  node [shape=box];"]
    for r, spec in enumerate(specs):
        indent = "    " if grouped else "  "
        if grouped:
            lines += [f"  subgraph cluster_{r} {{", f"    label={_dot('runner ' + (spec.name or ''))};"]
        lines += [f"{indent}{_dot(w.name)} [label={_dot(w.name + chr(10) + describe_worker(w))}];" for _, w in spec.workers]
        if grouped:
            lines.append("  }")
    styles = {"child": "", "send_to": ", style=dashed", "depends_on": ", style=bold"}
    for a, b, label in edges:
        lines.append(f"  {_dot(a)} -> {_dot(b)} [label={_dot(label)}{styles[label]}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def _dot(text: str) -> str:
    return json.dumps(text)


def render_plan(plan: Plan) -> str:
    """What ``up --dry-run`` prints: each runner, the bus, each worker with what it resolved to."""
    t = plan.topology
    lines = [f"bus {t.bus.type}" + "".join(f" {k}={v}" for k, v in _bus_details(t).items())]
    for rp in plan.runners:
        rc = rp.config
        lines.append(
            f"runner {rc.name or '(generated name)'}: auto_end={rc.auto_end} stop_timeout={rc.stop_timeout:g}s "
            f"cancel_timeout={rc.cancel_timeout:g}s sigint={rc.handle_sigint} sigterm={rc.handle_sigterm} "
            f"on_signal={rc.on_signal} force_gc={rc.force_gc}"
        )
        lines.append(f"  workers ({len(rp.workers)}, started in this order):")
        lines += [f"    - {_describe_resolved(rw)}" for rw in rp.workers]
    return "\n".join(lines) + "\n"


def _describe_resolved(rw: ResolvedWorker) -> str:
    w = rw.config
    extras = []
    if w.parent:
        extras.append(f"parent={w.parent}")
    if w.depends_on:
        extras.append("depends_on=" + ",".join(d.name if d.condition == "ready" else f"{d.name}({d.condition})" for d in w.depends_on))
    if isinstance(w, PipelineWorkerConfig):
        procs = [p if isinstance(p, str) else _call(p) for p in w.processors]
        extras.append("processors=[" + ", ".join(procs) + "]")
        if w.send_to:
            extras.append(f"send_to={w.send_to}")
        if w.frames:
            extras.append(f"frames={len(w.frames)}")
    elif isinstance(w, CommandWorkerConfig):
        cmd = w.command if isinstance(w.command, str) else shlex.join(w.command)
        extras.append(f"command={cmd!r} cwd={rw.target} restart={w.restart} stop={w.stop_signal}/{w.stop_timeout:g}s")
        if w.ready_line:
            extras.append(f"ready_line={w.ready_line!r}")
    elif getattr(w, "params", None):
        extras.append("params=" + json.dumps(w.params, sort_keys=True))  # type: ignore[union-attr]
    return f"{w.name}: {describe_worker(w)}" + (" " + " ".join(extras) if extras else "")


def _call(p: ProcessorCall) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in p.params.items())
    return f"{p.call}({args})"


def _bus_details(topology: Topology) -> dict[str, Any]:
    details = {k: v for k, v in topology.bus.model_dump(warnings=False).items() if k in ("url", "channel", "wire")}
    if "channel" in details:
        details["channel"] = topology.bus.channel_name  # type: ignore[union-attr]
    if "url" in details:
        details["url"] = redact(details["url"])
    return details


def normalised(topology: Topology, fmt: Literal["yaml", "json"] = "yaml") -> str:
    """The topology with defaults filled in and variables interpolated (durations in seconds).

    Secrets stay out of it: a URL's password, and the value of every key naming a secret
    (``password``, ``token``, ``api_key``...) in params and command environments, are ``***``.
    """
    from runnerconf.config.revision import document

    data = redact_secrets(document(topology))
    if isinstance(data.get("bus"), dict) and isinstance(data["bus"].get("url"), str):
        data["bus"]["url"] = redact(data["bus"]["url"])  # a password never reaches the output
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def variables_table(uses: list[VariableUse], environ: Mapping[str, str], fmt: Literal["text", "json"] = "text") -> str:
    """Each variable once: whether it is required, its default(s), and whether it is set."""
    merged: dict[str, dict[str, Any]] = {}
    for use in uses:
        entry = merged.setdefault(use.name, {"name": use.name, "required": False, "defaults": [], "set": use.name in environ})
        entry["required"] = entry["required"] or use.required
        if use.default is not None and use.default not in entry["defaults"]:
            entry["defaults"].append(use.default)
    rows = sorted(merged.values(), key=lambda e: e["name"])
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if not rows:
        return "no variables\n"
    width = max(len(r["name"]) for r in rows)
    lines = []
    for r in rows:
        need = "required" if r["required"] else "optional"
        default = f"default {', '.join(map(repr, r['defaults']))}" if r["defaults"] else "no default"
        state = "set" if r["set"] else ("MISSING" if r["required"] else "unset")
        lines.append(f"{r['name']:<{width}}  {need:<8}  {state:<7}  {default}")
    return "\n".join(lines) + "\n"
