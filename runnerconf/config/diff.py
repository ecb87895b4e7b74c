"""What changed between two topologies, and what applying the change does: a pure function.

Compared after defaults, variables and overlays (two files that mean the same are equal), per
runner and per worker:

* a worker added is started, one removed is stopped (gracefully, within the stop timeout);
* a worker changed is restarted, unless only keys that act on a running worker changed
  (:data:`IN_PLACE`): then it is changed in place; the children of a restarted parent restart
  with it;
* runner options, and anything of the bus, cannot change under a running runner: the runner
  "needs a runner restart" (its workers' changes are applied all the same);
* a runner added or removed is started or stopped by whoever runs ``up`` for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from runnerconf.config.models import Topology
from runnerconf.config.revision import document, make_revision
from runnerconf.utils.secrets import SECRET_KEY, redact

__all__ = ["IN_PLACE", "Change", "RunnerDiff", "TopologyDiff", "WorkerDiff", "diff_topologies"]

#: Worker keys a running worker takes without a restart.
IN_PLACE = frozenset({"required", "depends_on"})

WorkerAction = Literal["start", "stop", "restart", "change in place"]
RunnerAction = Literal["start runner", "stop runner", "needs a runner restart", "apply", "none"]


@dataclass
class Change:
    """One key that differs: its dotted path, and the old and new values (secrets shown as ***)."""

    key: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.key}: {_show(self.old)} -> {_show(self.new)}"


@dataclass
class WorkerDiff:
    name: str
    status: Literal["added", "removed", "changed"]
    action: WorkerAction
    changes: list[Change] = field(default_factory=list)
    #: Why it restarts when it did not change itself (its parent restarts).
    because: str | None = None


@dataclass
class RunnerDiff:
    #: The runner's name (None: the unnamed runner of a plain topology).
    name: str | None
    status: Literal["added", "removed", "changed", "unchanged"]
    action: RunnerAction
    changes: list[Change] = field(default_factory=list)
    workers: list[WorkerDiff] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"runner {self.name}" if self.name else "the runner"


@dataclass
class TopologyDiff:
    old_revision: str
    new_revision: str
    bus: list[Change]
    runners: list[RunnerDiff]

    @property
    def equal(self) -> bool:
        return not self.bus and all(r.status == "unchanged" for r in self.runners)

    def runner(self, name: str | None) -> RunnerDiff | None:
        return next((r for r in self.runners if r.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "equal": self.equal,
            "old_revision": self.old_revision,
            "new_revision": self.new_revision,
            "bus": [_public(asdict(c)) for c in self.bus],
            "runners": [_public(asdict(r)) for r in self.runners],
        }

    def render(self) -> str:
        """The diff for people: one block per runner that changes."""
        if self.equal:
            return f"no changes (revision {self.new_revision})\n"
        lines = [f"revision {self.old_revision} -> {self.new_revision}"]
        if self.bus:
            lines.append("bus: needs a restart of every runner")
            lines.extend(f"  {c}" for c in self.bus)
        for r in self.runners:
            if r.status == "unchanged":
                continue
            head = {"added": "+", "removed": "-", "changed": "~"}[r.status]
            lines.append(f"{head} {r.label}: {r.action}")
            lines.extend(f"    {c}" for c in r.changes)
            for w in r.workers:
                mark = {"added": "+", "removed": "-", "changed": "~"}[w.status]
                why = f", {w.because}" if w.because else ""
                lines.append(f"  {mark} worker {w.name}: {w.action}{why}")
                lines.extend(f"      {c}" for c in w.changes)
        return "\n".join(lines) + "\n"


def diff_topologies(old: Topology, new: Topology) -> TopologyDiff:
    """Compare two validated topologies (see the module's docstring for what each change does)."""
    a, b = document(old), document(new)
    bus = _changes(a.get("bus"), b.get("bus"), "bus")
    old_runners, new_runners = _runners(a), _runners(b)
    runners: list[RunnerDiff] = []
    for name in [*old_runners, *(n for n in new_runners if n not in old_runners)]:
        if name not in new_runners:
            runners.append(RunnerDiff(name, "removed", "stop runner", workers=_all(old_runners[name][1], "removed")))
            continue
        if name not in old_runners:
            runners.append(RunnerDiff(name, "added", "start runner", workers=_all(new_runners[name][1], "added")))
            continue
        (old_opts, old_workers), (new_opts, new_workers) = old_runners[name], new_runners[name]
        options = _changes(old_opts, new_opts, "")
        workers = _worker_diffs(old_workers, new_workers)
        if bus or options:
            action: RunnerAction = "needs a runner restart"
        else:
            action = "apply" if workers else "none"
        status = "changed" if (bus or options or workers) else "unchanged"
        runners.append(RunnerDiff(name, status, action, options, workers))
    return TopologyDiff(make_revision(old).id, make_revision(new).id, bus, runners)


def _runners(data: dict[str, Any]) -> dict[str | None, tuple[dict[str, Any], dict[str, dict[str, Any]]]]:
    """Each runner's options and its workers by name."""
    if data.get("runners") is not None:
        sections = [(r.get("name"), {k: v for k, v in r.items() if k != "workers"}, r.get("workers") or []) for r in data["runners"]]
    else:
        runner = dict(data.get("runner") or {})
        sections = [(runner.get("name"), runner, data.get("workers") or [])]
    return {name: (opts, {w["name"]: w for w in workers}) for name, opts, workers in sections}


def _all(workers: dict[str, dict[str, Any]], status: Literal["added", "removed"]) -> list[WorkerDiff]:
    return [WorkerDiff(n, status, "start" if status == "added" else "stop") for n in workers]


def _worker_diffs(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[WorkerDiff]:
    diffs: dict[str, WorkerDiff] = {}
    for name, config in old.items():
        if name not in new:
            diffs[name] = WorkerDiff(name, "removed", "stop")
            continue
        changes = _changes(config, new[name], "")
        if changes:
            top = {c.key.split(".", 1)[0].split("[", 1)[0] for c in changes}
            diffs[name] = WorkerDiff(name, "changed", "change in place" if top <= IN_PLACE else "restart", changes)
    for name in new:
        if name not in old:
            diffs[name] = WorkerDiff(name, "added", "start")
    # A restarted (or stopped) parent ends its children: they restart with it.
    restarting = {n for n, d in diffs.items() if d.action in ("restart", "stop")}
    changed = True
    while changed:
        changed = False
        for name, config in new.items():
            parent = config.get("parent")
            if name in old and parent in restarting and name not in restarting:
                diff = diffs.get(name)
                if diff is None:
                    diffs[name] = WorkerDiff(name, "changed", "restart", because=f"with its parent {parent}")
                else:
                    diff.action, diff.because = "restart", f"with its parent {parent}"
                restarting.add(name)
                changed = True
    order = [*old, *(n for n in new if n not in old)]
    return [diffs[n] for n in order if n in diffs]


def _changes(old: Any, new: Any, prefix: str) -> list[Change]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[Change] = []
        for key in [*old, *(k for k in new if k not in old)]:
            path = f"{prefix}.{key}" if prefix else key
            if _secret_key(key, prefix):
                if old.get(key) != new.get(key):
                    out.append(Change(path, _HIDDEN if key in old else None, _HIDDEN if key in new else None))
                continue
            out.extend(_changes(old.get(key, _MISSING), new.get(key, _MISSING), path))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [c for i, (x, y) in enumerate(zip(old, new)) for c in _changes(x, y, f"{prefix}[{i}]")]
    return [Change(prefix, _shown(old, prefix), _shown(new, prefix))]


class _Token:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


_MISSING = _Token("(not set)")
_HIDDEN = _Token("***")


def _secret_key(key: Any, prefix: str) -> bool:
    return isinstance(key, str) and (bool(SECRET_KEY.search(key)) or (prefix == "bus" and key in ("secret", "secret_file")))


def _shown(value: Any, path: str) -> Any:
    if path.endswith("url") and isinstance(value, str):
        return redact(value)
    return value


def _show(value: Any) -> str:
    if isinstance(value, _Token):
        return value.text
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if not isinstance(value, (dict, list)) else _json(value)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


def _public(data: Any) -> Any:
    """asdict() output with the tokens as their text, for JSON."""
    if isinstance(data, dict):
        return {k: _public(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_public(v) for v in data]
    return data.text if isinstance(data, _Token) else data
