"""Running a topology as the main job of a process, the way ``runnerconf up`` does.

What a process manager (systemd, Docker, Kubernetes, a CI job) expects of its child: processes
reaped whatever way it ends, probes over HTTP, an exit code that says what happened, and one line
saying why whenever it is not 0. The command line is a thin face over :func:`run_up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from runnerconf.bus.bus import BusError
from runnerconf.config.build import Launch, Plan, build_topology
from runnerconf.config.errors import Problem, TopologyError
from runnerconf.config.models import Topology
from runnerconf.workers.base_worker import BaseWorker
from runnerconf.workers.group import RunnerGroup
from runnerconf.workers.processes import reap_process_groups
from runnerconf.workers.runner import WorkerRunner

__all__ = [
    "Control",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_STARTUP",
    "EXIT_USAGE",
    "Outcome",
    "close_loop",
    "exit_code",
    "run_up",
]

logger = logging.getLogger("runnerconf.up")

EXIT_OK = 0
EXIT_INVALID = 1  # invalid topology, or a worker failed during `up`
EXIT_USAGE = 2  # click's own code for usage errors
EXIT_STARTUP = 3  # an import that fails, a worker that cannot be built, a bus that cannot be reached


@dataclass
class Outcome:
    """How ``up`` ends: its exit code, why (for a non-zero code), and the problems at start-up."""

    code: int
    reason: str
    problems: list[Problem]


@dataclass
class Control:
    """How ``up`` follows its files: where they are, how to read them again, and what to watch.

    Attributes:
        path: The (first) topology file: names the control socket and the git work tree.
        reread: Reads the files again (raises TopologyError): for SIGHUP and ``--watch``.
        watch: Files whose changes reload (``--watch``), or None.
    """

    path: str | None = None
    reread: Callable[[], Topology] | None = None
    watch: list[str] | None = None


def run_up(
    topology: Topology,
    plan: Plan,
    *,
    runner: str | None = None,
    exit_code_from: str | None = None,
    http: str | None = None,
    control: Control | None = None,
) -> Outcome:
    """Build and run the topology in a new event loop until it ends; never raises for the
    topology's or the bus's faults (they are the outcome)."""
    loop = asyncio.new_event_loop()
    try:
        with reap_process_groups():
            return loop.run_until_complete(_up(topology, plan, runner, exit_code_from, http, control or Control()))
    except KeyboardInterrupt:
        # SIGINT while building, or with handle_sigint: false.
        return Outcome(128 + signal.SIGINT, "interrupted (SIGINT)", [])
    finally:
        close_loop(loop)


async def _up(
    topology: Topology, plan: Plan, runner: str | None, exit_code_from: str | None, http: str | None, control: Control
) -> Outcome:
    try:
        launch = await build_topology(topology, plan, runner=runner)
    except TopologyError as exc:
        return Outcome(EXIT_STARTUP, "start-up failed: a worker could not be built", exc.problems)
    finally:
        gc.enable()  # `up` pauses it while it reads and builds
    gc.freeze()  # what was built lives as long as the process: later passes need not scan it
    if topology.bus.type == "redis" and not getattr(topology.bus, "signed", False):
        logger.warning(
            "the bus is not authenticated: anyone who can publish on channel %r can end these runners or pose as "
            "their workers; set bus.secret (and use Redis ACLs and TLS)",
            getattr(topology.bus, "channel_name", None),
        )
    watched = launch.worker(exit_code_from) if exit_code_from is not None else None
    if exit_code_from is not None and watched is None:
        return Outcome(EXIT_USAGE, f"--exit-code-from: no worker {exit_code_from!r} is started here", [])
    watcher = asyncio.ensure_future(_end_when_done(launch, watched)) if watched is not None else None
    try:
        async with _probes(launch, http or _http_of(plan)), _controlled(launch, topology, control):
            target = await launch.run()
    except BusError as exc:
        return Outcome(EXIT_STARTUP, f"start-up failed: {exc}", [])
    except OSError as exc:  # the probe's port is taken, or the host is not an address here
        return Outcome(EXIT_STARTUP, f"start-up failed: cannot serve HTTP on {http or _http_of(plan)}: {exc.strerror or exc}", [])
    finally:
        if watcher is not None:
            watcher.cancel()
    return _summarise(target, watched)


async def _end_when_done(launch: Launch, worker: BaseWorker) -> None:
    await worker.wait()
    await launch.end(f"--exit-code-from {worker.name}: it finished")


@contextlib.asynccontextmanager
async def _probes(launch: Launch, address: str | None) -> AsyncIterator[None]:
    if address is None:
        yield
        return
    from runnerconf.http import serve  # a leaf of its own, loaded only when asked for

    async with serve(launch.runners, address):
        yield


@contextlib.asynccontextmanager
async def _controlled(launch: Launch, topology: Topology, control: Control) -> AsyncIterator[None]:
    """Reloads (SIGHUP, ``--watch``), the control socket, and the control agent on a network bus."""
    from runnerconf.control.controller import Controller
    from runnerconf.control.local import serve

    controller = Controller(launch, topology, path=control.path, reread=control.reread)
    logger.info("revision %s", controller.revision.label, extra={"event": "revision", "revision": controller.revision.id, "git": controller.revision.git})
    tasks: set[asyncio.Future[Any]] = set()

    def on_sighup() -> None:
        task = asyncio.ensure_future(controller.reload("SIGHUP"))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    launch.target.on_sighup = on_sighup
    agent = None
    if topology.bus.type != "async_queue":
        from runnerconf.control.remote import ControlAgent

        agent = ControlAgent(controller, control.path or "<memory>")
        await agent.attach(launch.runners[0].bus)
    watcher = None
    if control.watch:
        from runnerconf.control.watch import watch_files

        async def changed(paths: list[str]) -> None:
            await controller.reload(f"{', '.join(paths)} changed")

        watcher = asyncio.ensure_future(watch_files(control.watch, changed))
    try:
        if control.path is not None and control.path != "-":
            async with serve(controller, control.path):
                yield
        else:
            yield
    finally:
        if watcher is not None:
            watcher.cancel()
        for task in tasks:
            task.cancel()
        if agent is not None:
            await agent.close()  # an apply still under way ends with the runners


def _http_of(plan: Plan) -> str | None:
    addresses = [p.config.http for p in plan.runners if p.config.http]
    return addresses[0] if addresses else None


def exit_code(target: WorkerRunner | RunnerGroup) -> int:
    """0, 1 when a worker failed, or 128 + signal number after a forced stop by a signal."""
    if target.forced:
        return 128 + target.signals_received[-1]
    return EXIT_INVALID if target.any_failed() else EXIT_OK


def _summarise(target: WorkerRunner | RunnerGroup, watched: BaseWorker | None) -> Outcome:
    if target.forced:
        sig = signal.Signals(target.signals_received[-1]).name
        how = "a second signal" if len(target.signals_received) > 1 else "the first signal (on_signal: cancel)"
        return Outcome(exit_code(target), f"forced stop by {how} ({sig})", [])
    if watched is not None:
        code = _status_of(target, watched)
        return Outcome(code, f"--exit-code-from {watched.name}: exit status {code}", [])
    if target.any_failed():
        failed = target.failed
        first = failed[0] if failed else None
        what = f"worker {first.name!r} {first.outcome}" if first else "a worker failed"
        if first is not None and first.error is not None:
            what += f": {type(first.error).__name__}: {first.error}"
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        return Outcome(EXIT_INVALID, what + more, [])
    return Outcome(EXIT_OK, target.stop_reason or "done", [])


def _status_of(target: WorkerRunner | RunnerGroup, worker: BaseWorker) -> int:
    """A command's exit code (a signal N as 128 + N); 0 or 1 for an in-process worker."""
    result = target.results.get(worker.name)
    code = getattr(worker, "returncode", None)
    if isinstance(code, int) and code >= 0:
        return code
    if isinstance(code, int):
        return 128 - code
    return EXIT_OK if result is not None and result.outcome == "finished" else EXIT_INVALID


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    # Give what is left (a worker abandoned for ignoring cancellation) one bounded chance to stop;
    # never wait on it forever the way asyncio.run() would.
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
