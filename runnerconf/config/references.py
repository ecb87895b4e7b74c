"""Checks across workers: unique names, parents that exist and form no cycle, ``send_to``.

They run on the plain data, so they are reported alongside model errors: a file with a typo in
one worker and a parent cycle in two others shows all three problems at once.
"""

from __future__ import annotations

import difflib
from typing import Any

from runnerconf.config.errors import Problem
from runnerconf.config.source import Path, SourceMap

__all__ = ["check_references", "unknown_worker"]

#: Keys of a worker that name another worker.
REFERENCE_KEYS = ("parent", "send_to")


def check_references(data: dict[str, Any], source: SourceMap) -> list[Problem]:
    """Every cross-reference problem in a topology document."""
    workers = _workers(data)
    problems: list[Problem] = []
    index: dict[str, Path] = {}
    for path, worker in workers:
        name = worker.get("name")
        if not isinstance(name, str):
            continue
        if name in index:
            first = source.locate((*index[name], "name"))
            problems.append(
                source.problem((*path, "name"), "duplicate-name", f"duplicate worker name {name!r} (first at line {first.line})")
            )
        else:
            index[name] = path
    runner = data.get("runner")
    runner_name = runner.get("name") if isinstance(runner, dict) else None
    if isinstance(runner_name, str) and runner_name in index:
        problems.append(
            source.problem(("runner", "name"), "duplicate-name", f"the runner and a worker are both named {runner_name!r}")
        )
    names = list(index)
    for path, worker in workers:
        for key in REFERENCE_KEYS:
            ref = worker.get(key)
            if not isinstance(ref, str):
                continue
            if ref == worker.get("name"):
                problems.append(source.problem((*path, key), "self-reference", f"worker {ref!r} cannot name itself as {key}"))
            elif ref not in index:
                problems.append(source.problem((*path, key), "unknown-worker", unknown_worker(ref, names)))
    problems.extend(_parent_cycles(workers, source, index))
    return problems


def _workers(data: dict[str, Any]) -> list[tuple[Path, dict[str, Any]]]:
    items = data.get("workers")
    if not isinstance(items, list):
        return []
    return [(("workers", i), w) for i, w in enumerate(items) if isinstance(w, dict)]


def unknown_worker(name: str, names: list[str]) -> str:
    """Message for a reference to a worker that does not exist."""
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"no worker named {name!r}{hint} (workers: {', '.join(names) or 'none'})"


def _parent_cycles(workers: list[tuple[Path, dict[str, Any]]], source: SourceMap, index: dict[str, Path]) -> list[Problem]:
    parent: dict[str, str] = {}
    for _, w in workers:
        name, p = w.get("name"), w.get("parent")
        if isinstance(name, str) and isinstance(p, str) and p in index and p != name:
            parent[name] = p
    order = {name: i for i, name in enumerate(index)}
    problems = []
    reported: set[str] = set()
    for start in parent:
        chain = [start]
        seen = {start}
        node = parent.get(start)
        while node is not None and node not in seen:
            chain.append(node)
            seen.add(node)
            node = parent.get(node)
        if node is None or node in reported:
            continue
        cycle = chain[chain.index(node) :]
        reported.update(cycle)
        first = min(cycle, key=order.__getitem__)
        problems.append(
            source.problem((*index[first], "parent"), "parent-cycle", "parents form a cycle: " + " -> ".join([*cycle, cycle[0]]))
        )
    return problems
