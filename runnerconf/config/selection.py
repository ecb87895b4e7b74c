"""Which runners and workers to start: ``up --runner NAME`` and ``up TOPOLOGY WORKER...``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from runnerconf.config.models import RunnerSpec, Topology
from runnerconf.config.references import unknown_worker

__all__ = ["SelectionError", "select_runners", "worker_closure"]


class SelectionError(ValueError):
    """A runner or worker name that the topology does not have; the message lists those it has."""


def worker_closure(topology: Topology, names: Sequence[str]) -> set[str]:
    """``names``, the workers they depend on (transitively), their parents, and their children.

    A parent's lifetime encloses its children's, so a child never starts without its parent, and
    a parent starts with its children.

    Raises:
        SelectionError: a name is not a worker of the topology.
    """
    workers = {w.name: w for w in topology.all_workers()}
    unknown = [n for n in names if n not in workers]
    if unknown:
        raise SelectionError(unknown_worker(unknown[0], list(workers)))
    children: dict[str, list[str]] = {}
    for w in workers.values():
        if w.parent is not None:
            children.setdefault(w.parent, []).append(w.name)
    chosen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in chosen:
            continue
        chosen.add(name)
        worker = workers[name]
        # A dependency that is no worker of the file runs elsewhere on the bus (external_workers).
        todo += [d.name for d in worker.depends_on if d.name in workers]  # type: ignore[union-attr]
        if worker.parent is not None:
            todo.append(worker.parent)
        todo += children.get(name, [])
    return chosen


def select_runners(topology: Topology, runner: str | None = None, workers: Sequence[str] = ()) -> list[RunnerSpec]:
    """The runner named ``runner`` (or all of them), with only ``workers`` and what they need
    (all workers when none is named). Workers keep their places in the file, for messages.

    Raises:
        SelectionError: no runner or no worker of that name.
    """
    specs = topology.runner_specs()
    if runner is not None:
        specs = [s for s in specs if s.name == runner]
        if not specs:
            names = ", ".join(s.name or "(unnamed)" for s in topology.runner_specs())
            raise SelectionError(f"no runner named {runner!r} in this topology (runners: {names})")
    if not workers:
        return specs
    chosen = worker_closure(topology, workers)
    return [dataclasses.replace(s, workers=[(p, w) for p, w in s.workers if w.name in chosen]) for s in specs]
