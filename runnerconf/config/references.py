"""Checks across workers and runners: unique names, references that exist, no cycles.

They run on the plain data, so they are reported alongside model errors: a file with a typo in
one worker and a parent cycle in two others shows all three problems at once.
"""

from __future__ import annotations

from typing import Any

from runnerconf.config.errors import Problem
from runnerconf.config.interpolate import Placeholder
from runnerconf.config.source import Path, SourceMap

__all__ = ["check_references", "unknown_worker"]

#: Keys of a worker that name another worker (or a list of them).
REFERENCE_KEYS = ("parent", "send_to", "depends_on", "watch")


def check_references(data: dict[str, Any], source: SourceMap) -> list[Problem]:
    """Every cross-reference problem in a topology document."""
    problems: list[Problem] = _check_layout(data, source) + _check_stream_names(data, source)
    workers = _workers(data)
    runner_names = _runner_names(data, source, problems)
    index: dict[str, Path] = {}
    runner_of: dict[str, Path] = {}
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
            runner_of[name] = path[:-2]
    for runner_name, where in runner_names.items():
        if runner_name in index:
            problems.append(source.problem(where, "duplicate-name", f"a runner and a worker are both named {runner_name!r}"))
    names = list(index)
    external = _external_workers(data)
    # A name left as `${VAR}` (--no-interpolate) could be any name: references cannot be known
    # to be wrong, only to be right.
    open_names = any(isinstance(w.get("name"), Placeholder) for _, w in workers)
    for path, worker in workers:
        for key in REFERENCE_KEYS:
            value = worker.get(key)
            refs = [((*path, key), value)] if isinstance(value, str) else []
            if key in ("depends_on", "watch") and isinstance(value, list):
                refs = [(_ref_path(path, key, i, r), _ref_name(r)) for i, r in enumerate(value) if isinstance(_ref_name(r), str)]
            for where, ref in refs:
                if isinstance(ref, Placeholder):
                    continue
                if ref == worker.get("name"):
                    problems.append(source.problem(where, "self-reference", f"worker {ref!r} cannot name itself in {key}"))
                elif ref in external and key != "parent":
                    continue  # runs elsewhere on the bus: its readiness and its data travel on it
                elif ref not in index and not open_names:
                    problems.append(source.problem(where, "unknown-worker", unknown_worker(ref, names)))
                elif key == "parent" and ref in runner_of and runner_of[ref] != path[:-2]:
                    problems.append(
                        source.problem(
                            where, "parent-elsewhere", f"parent {ref!r} runs on another runner; a parent and its children share one"
                        )
                    )
    problems.extend(_cycles(workers, source, index, "parent", "parents form a cycle"))
    problems.extend(_cycles(workers, source, index, "depends_on", "depends_on forms a cycle (they would wait for each other)"))
    problems.extend(_cycles(workers, source, index, "send_to", "send_to forms a cycle (what one sends would come back to it for ever)"))
    return problems


def _check_stream_names(data: dict[str, Any], source: SourceMap) -> list[Problem]:
    """A stream resumes each runner by its name: the one runner of a plain topology needs one."""
    bus = data.get("bus")
    if not isinstance(bus, dict) or bus.get("delivery") != "stream" or "runners" in data:
        return []
    runner = data.get("runner")
    if isinstance(runner, dict) and runner.get("name") is not None:
        return []
    return [
        source.problem(
            ("bus", "delivery"),
            "stream-needs-name",
            "delivery: stream resumes each runner by its name: give the runner one (runner: {name: ...})",
        )
    ]


def _external_workers(data: dict[str, Any]) -> set[str]:
    """The bus's ``external_workers``: names that run on the bus but not in this file."""
    bus = data.get("bus")
    names = bus.get("external_workers") if isinstance(bus, dict) else None
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()


def _check_layout(data: dict[str, Any], source: SourceMap) -> list[Problem]:
    if "runners" not in data:
        return []
    clash = [k for k in ("runner", "workers") if k in data]
    if not clash:
        return []
    return [
        source.problem(
            ("runners",),
            "runners-and-runner",
            f"`runners` cannot be combined with {' and '.join(f'`{k}`' for k in clash)}: "
            "give each runner its options and workers inside `runners`",
            key=True,
        )
    ]


def _runner_names(data: dict[str, Any], source: SourceMap, problems: list[Problem]) -> dict[str, Path]:
    names: dict[str, Path] = {}
    runners = data.get("runners")
    if isinstance(runners, list):
        for r, runner in enumerate(runners):
            name = runner.get("name") if isinstance(runner, dict) else None
            if not isinstance(name, str):
                continue
            if name in names:
                first = source.locate(names[name])
                problems.append(
                    source.problem(("runners", r, "name"), "duplicate-runner", f"duplicate runner name {name!r} (first at line {first.line})")
                )
            else:
                names[name] = ("runners", r, "name")
    runner = data.get("runner")
    if isinstance(runner, dict) and isinstance(runner.get("name"), str):
        names.setdefault(runner["name"], ("runner", "name"))
    return names


def _ref_name(item: Any) -> Any:
    """A reference in a list: a name, or a mapping with one (``{name: db, condition: healthy}``)."""
    return item.get("name") if isinstance(item, dict) else item


def _ref_path(path: Path, key: str, index: int, item: Any) -> Path:
    return (*path, key, index, "name") if isinstance(item, dict) else (*path, key, index)


def _workers(data: dict[str, Any]) -> list[tuple[Path, dict[str, Any]]]:
    """Every worker mapping with its path: top-level ones and those of each runner."""
    found: list[tuple[Path, dict[str, Any]]] = []
    lists: list[tuple[Path, Any]] = [(("workers",), data.get("workers"))]
    runners = data.get("runners")
    if isinstance(runners, list):
        lists += [(("runners", r, "workers"), x.get("workers")) for r, x in enumerate(runners) if isinstance(x, dict)]
    for prefix, items in lists:
        if isinstance(items, list):
            found += [((*prefix, i), w) for i, w in enumerate(items) if isinstance(w, dict)]
    return found


def unknown_worker(name: str, names: list[str]) -> str:
    """Message for a reference to a worker that does not exist."""
    import difflib  # only for a wrong reference: a valid file does not pay for it

    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"no worker named {name!r}{hint} (workers: {', '.join(names) or 'none'})"


def _cycles(
    workers: list[tuple[Path, dict[str, Any]]], source: SourceMap, index: dict[str, Path], key: str, what: str
) -> list[Problem]:
    """One problem per cycle in the ``key`` relation (a name or a list of names per worker)."""
    edges: dict[str, list[str]] = {}
    for _, w in workers:
        value = w.get(key)
        if not value:
            continue  # most workers point nowhere: no node to visit
        name = w.get("name")
        targets = [_ref_name(v) for v in value] if isinstance(value, list) else [value]
        if isinstance(name, str):
            edges[name] = [t for t in targets if isinstance(t, str) and t in index and t != name]
    if not edges:
        return []
    order = {name: i for i, name in enumerate(index)}
    problems: list[Problem] = []
    reported: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    first = min(cycle, key=order.__getitem__)
                    start = cycle.index(first)
                    ring = cycle[start:] + cycle[:start]
                    problems.append(
                        source.problem((*index[first], key), f"{key.replace('_', '-')}-cycle", f"{what}: " + " -> ".join([*ring, first]))
                    )
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(edges, key=order.__getitem__):
        if name not in state:
            visit(name)
    return problems
