"""Drift: what the runners run against what the topology file says (a pure function)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runnerconf.config.models import Topology
from runnerconf.config.revision import make_revision, worker_fingerprints

__all__ = ["RUNNING", "drift"]

#: Worker states that count as running (the rest are finished, failed or cancelled).
RUNNING = frozenset({"created", "starting", "running", "stopping"})


def drift(topology: Topology, statuses: Sequence[dict[str, Any]]) -> list[str]:
    """Every difference between ``topology`` and ``statuses`` (as :meth:`Controller.status`
    gives them), one line each; empty when what runs is what the file says."""
    revision = make_revision(topology).id
    fingerprints = worker_fingerprints(topology)
    specs = {spec.name: [w.name for _, w in spec.workers] for spec in topology.runner_specs()}
    seen = {s.get("spec"): s for s in statuses}
    lines: list[str] = []
    for name in specs:
        label = f"runner {name}" if name else "the runner"
        status = seen.get(name)
        if status is None:
            lines.append(f"{label}: not running")
            continue
        if status.get("revision") != revision:
            lines.append(f"{label}: runs revision {status.get('revision')}, the file is revision {revision}")
        for key in status.get("needs_restart") or []:
            lines.append(f"{label}: {key} changed and needs a runner restart")
        workers = {w["name"]: w for w in status.get("workers") or []}
        for worker in specs.get(name, []):
            live = workers.get(worker)
            if live is None:
                lines.append(f"{label}: worker {worker} is missing")
            elif live.get("config") != fingerprints.get(worker):
                lines.append(f"{label}: worker {worker} runs another configuration")
        for worker, live in workers.items():
            if worker not in specs.get(name, []) and live.get("state") in RUNNING:
                lines.append(f"{label}: worker {worker} runs but is not in the file")
    for name in seen:
        if name not in specs:
            lines.append(f"runner {name}: runs but is not in the file")
    return lines
