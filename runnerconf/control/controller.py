"""The :class:`Controller`: keeps the runners of one ``up`` process in step with a topology.

It owns what ``up`` is running now (the topology and its revision), applies a new topology as
:func:`~runnerconf.config.diff.diff_topologies` says -- removed workers end gracefully, changed
ones restart one at a time, added ones start (their ``depends_on`` honoured), the rest keep
running and keep their state -- and answers status questions (``runnerconf ps``).

One change at a time: reloads, SIGHUPs and ``apply`` requests queue behind one lock. A new
topology that fails validation, imports or construction changes nothing.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runnerconf.config.build import Launch, build_workers, resolve
from runnerconf.config.diff import RunnerDiff, TopologyDiff, diff_topologies
from runnerconf.config.errors import Problem, TopologyError
from runnerconf.config.models import Topology
from runnerconf.config.revision import Revision, make_revision, worker_fingerprints
from runnerconf.workers.runner import WorkerRunner

__all__ = ["ApplyOutcome", "Controller"]

logger = logging.getLogger("runnerconf.control")


@dataclass
class ApplyOutcome:
    """What applying a revision did on one runner."""

    runner: str
    revision: str
    ok: bool
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    in_place: list[str] = field(default_factory=list)
    needs_restart: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def summary(self) -> str:
        if not self.ok:
            return f"not applied: {self.error}"
        parts = [f"{label} {', '.join(names)}" for label, names in (
            ("started", self.started), ("stopped", self.stopped), ("restarted", self.restarted), ("changed in place", self.in_place),
        ) if names]  # fmt: skip
        text = "; ".join(parts) or "no worker changed"
        if self.needs_restart:
            text += f"; needs a runner restart for {', '.join(self.needs_restart)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "summary": self.summary}


class Controller:
    """Applies topologies to the runners of a :class:`~runnerconf.config.build.Launch`.

    Args:
        launch: What ``up`` runs.
        topology: The topology it was built from.
        path: The topology file (for the git commit in revisions), or None.
        reread: Reads the topology files again (raises TopologyError), for reloads.
    """

    def __init__(
        self,
        launch: Launch,
        topology: Topology,
        *,
        path: str | None = None,
        reread: Callable[[], Topology] | None = None,
    ) -> None:
        self.launch = launch
        self.topology = topology
        self.path = path
        self.reread = reread
        self.revision: Revision = make_revision(topology, path)
        self.fingerprints = worker_fingerprints(topology)
        #: Workers restarted by reloads, by name.
        self.restarts: dict[str, int] = {}
        #: Runner or bus keys changed since start that only a restart of the runner applies.
        self.needs_restart: dict[str, list[str]] = {}
        self._lock = asyncio.Lock()
        self.started_at = time.time()

    @property
    def runners(self) -> list[WorkerRunner]:
        return self.launch.runners

    def spec_name(self, runner: WorkerRunner) -> str | None:
        """The name ``runner`` has in the file (a plain topology's may have none: the
        WorkerRunner made one up)."""
        if self.topology.runners is None:
            return self.topology.runner.name
        return runner.name

    # -- reloading -------------------------------------------------------------------------------

    async def reload(self, why: str) -> list[ApplyOutcome] | None:
        """Read the files again and apply them; an invalid file changes nothing (logged).
        Returns the outcomes, or None when the files could not be used."""
        if self.reread is None:
            logger.warning("reload (%s): this process was not started from files; nothing to reload", why)
            return None
        try:
            topology = await asyncio.get_running_loop().run_in_executor(None, self.reread)
        except TopologyError as exc:
            _log_problems(f"reload ({why}): the new topology is invalid; nothing changed", exc.problems)
            return None
        except Exception as exc:  # an env file gone or unreadable (a usage error at start)
            logger.error("reload (%s): the files cannot be read (%s); nothing changed", why, getattr(exc, "message", None) or exc)
            return None
        return await self.apply(topology, make_revision(topology, self.path), why)

    async def apply(self, topology: Topology, revision: Revision, why: str, only: str | None = None) -> list[ApplyOutcome]:
        """Apply ``topology`` to the runners here (with ``only``, to that runner only)."""
        async with self._lock:
            # `up` froze what it built (host.py): workers replaced now must be collectable.
            gc.unfreeze()
            change = diff_topologies(self.topology, topology)
            if revision.bus == self.revision.bus:
                change.bus = []  # same bus (a revision from `apply` carries it without its secrets)
            # The bus cannot change under running runners: they keep theirs (with its secrets;
            # what changed of it is reported as needing a restart).
            topology.bus = self.topology.bus
            outcomes = []
            for runner in self.runners:
                name = self.spec_name(runner)
                if only is not None and name != only:
                    continue
                rdiff = change.runner(name)
                if rdiff is None or rdiff.status == "removed":
                    outcomes.append(
                        ApplyOutcome(runner.name, revision.id, False, error=f"the new topology has no runner {name!r}; stop it with down")
                    )
                    continue
                outcomes.append(await self._apply_runner(runner, name, rdiff, change, topology, revision))
            if all(o.ok for o in outcomes):
                self.topology, self.revision = topology, revision
                self.fingerprints = worker_fingerprints(topology)
            for o in outcomes:
                level = logging.INFO if o.ok else logging.ERROR
                logger.log(
                    level,
                    "runner %s: %s revision %s (%s): %s",
                    o.runner,
                    "applied" if o.ok else "did not apply",
                    revision.label,
                    why,
                    o.summary,
                    extra={"event": "reload", "runner": o.runner, "revision": revision.id, "git": revision.git, "ok": o.ok},
                )
            return outcomes

    async def _apply_runner(
        self, runner: WorkerRunner, name: str | None, rdiff: RunnerDiff, change: TopologyDiff, topology: Topology, revision: Revision
    ) -> ApplyOutcome:
        outcome = ApplyOutcome(runner.name, revision.id, True)
        outcome.needs_restart = [f"bus.{c.key.removeprefix('bus.')}" for c in change.bus] + [f"runner.{c.key}" for c in rdiff.changes]
        if outcome.needs_restart:
            self.needs_restart[runner.name] = outcome.needs_restart
            logger.warning(
                "runner %s: %s cannot change under a running runner: restart it to apply that part",
                runner.name,
                ", ".join(outcome.needs_restart),
            )
        else:
            self.needs_restart.pop(runner.name, None)
        to_build = {w.name for w in rdiff.workers if w.action in ("start", "restart")}
        try:
            plan = resolve(topology, name if topology.runners is not None else None)
            built = await build_workers(topology, plan.runners[0], to_build) if to_build else {}
        except (TopologyError, ValueError) as exc:
            problems = exc.problems if isinstance(exc, TopologyError) else []
            _log_problems(f"runner {runner.name}: revision {revision.id} cannot be built; nothing changed", problems)
            outcome.ok = False
            outcome.error = "; ".join(str(p) for p in problems[:3]) or str(exc)
            return outcome
        configs = {rw.config.name: rw.config for rw in plan.runners[0].workers}
        old_configs = {w.name: w for w in self.topology.all_workers()}
        async with runner.hold():
            for w in rdiff.workers:
                if w.action == "stop":
                    await self._stop(runner, w.name, old_configs, "removed from the topology")
                    outcome.stopped.append(w.name)
            for w in rdiff.workers:
                if w.action == "restart":
                    await self._stop(runner, w.name, old_configs, f"restarted by revision {revision.id}")
                    await self._add(runner, built, configs, w.name)
                    self.restarts[w.name] = self.restarts.get(w.name, 0) + 1
                    outcome.restarted.append(w.name)
                elif w.action == "start":
                    await self._add(runner, built, configs, w.name)
                    outcome.started.append(w.name)
                elif w.action == "change in place":
                    live = runner.get_worker(w.name)
                    if live is not None:
                        live.required = configs[w.name].required
                        live.depends_on = [(d.name, d.condition) for d in configs[w.name].depends_on]
                    outcome.in_place.append(w.name)
        return outcome

    async def _stop(self, runner: WorkerRunner, name: str, configs: dict[str, Any], reason: str) -> None:
        config = configs.get(name)
        timeout = getattr(config, "stop_timeout", None)
        # A command's own stop_timeout is its process tree's grace; the runner's covers the rest.
        grace = runner.stop_timeout if timeout is None else timeout + runner.cancel_timeout
        await runner.stop_worker(name, reason, timeout=grace)

    async def _add(self, runner: WorkerRunner, built: dict[str, Any], configs: dict[str, Any], name: str) -> None:
        worker = built[name]
        parent_name = configs[name].parent
        if parent_name is None:
            await runner.add_workers(worker)
            return
        if parent_name in built and built[parent_name].worker_runner is None:
            await built[parent_name].add_workers(worker)  # comes along when the parent is added
            return
        parent = runner.get_worker(parent_name)
        if parent is not None:
            await parent.add_workers(worker)

    # -- status ----------------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """What each runner here runs: its revision and its workers (``runnerconf ps``)."""
        now = time.time()
        out = []
        for runner in self.runners:
            workers = []
            for w in runner.workers():
                started = w.started_at
                workers.append(
                    {
                        "name": w.name,
                        "state": w._rc.state.value,
                        "ready": bool(w._rc.ready),
                        "parent": w._rc.parent,
                        "uptime": round(now - started, 3) if started else None,
                        "restarts": self.restarts.get(w.name, 0) + int(getattr(w, "restarts", 0) or 0),
                        "config": self.fingerprints.get(w.name),
                    }
                )
            for result in runner.results.values():
                if runner.get_worker(result.name) is None:
                    workers.append(
                        {"name": result.name, "state": result.outcome, "ready": False, "parent": None, "uptime": None,
                         "restarts": self.restarts.get(result.name, 0), "config": self.fingerprints.get(result.name)}
                    )  # fmt: skip
            out.append(
                {
                    "runner": runner.name,
                    "spec": self.spec_name(runner),
                    "revision": self.revision.id,
                    "git": self.revision.git,
                    "needs_restart": self.needs_restart.get(runner.name, []),
                    "uptime": round(now - self.started_at, 3),
                    "workers": workers,
                }
            )
        return out


def _log_problems(headline: str, problems: list[Problem]) -> None:
    # One line (log lines never hold raw newlines): the problems, each with its place.
    logger.error("%s%s", headline, "".join(f"; {p}" for p in problems))
