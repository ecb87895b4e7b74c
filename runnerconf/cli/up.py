"""``runnerconf up``: run a topology until it ends."""

from __future__ import annotations

import gc
import logging
import re
import sys
from typing import TYPE_CHECKING

import click

from runnerconf.cli.options import (
    EXIT_CODES_HELP,
    EXIT_STARTUP,
    env_files_for,
    fail,
    load,
    report,
    topology_argument,
    topology_files,
    topology_inputs,
)

if TYPE_CHECKING:
    from runnerconf.config.models import Topology
    from runnerconf.config.overrides import Override

logger = logging.getLogger("runnerconf.up")


@click.command(epilog=EXIT_CODES_HELP)
@topology_argument
@click.argument("workers", nargs=-1, metavar="[WORKER]...")
@click.option(
    "--runner",
    "runner_name",
    metavar="NAME",
    help="The runner to start (default: all of them, in this process; names a plain topology's runner).",
)
@topology_inputs
@click.option("--dry-run", is_flag=True, help="Resolve everything and print the plan; start nothing.")
@click.option(
    "--exit-code-from",
    metavar="WORKER",
    help="Exit with WORKER's exit status once it finishes (a command's code; 0/1 otherwise), ending the rest.",
)
@click.option("--http", metavar="HOST:PORT", help="Serve /healthz, /readyz and /metrics there (overrides runner.http).")
@click.option(
    "--watch",
    is_flag=True,
    help="Reload when a topology, overlay or env file changes (as SIGHUP does): only what changed restarts.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True, help="json: one object per line.")
def up(
    topology: str | None,
    workers: tuple[str, ...],
    runner_name: str | None,
    sets: list[Override],
    env_files: tuple[str, ...],
    dry_run: bool,
    exit_code_from: str | None,
    http: str | None,
    log_level: str,
    log_format: str,
    watch: bool,
    files: tuple[str, ...],
) -> None:
    """Load, validate, build and run TOPOLOGY until the runner ends.

    The runner ends by itself (auto_end), on an end/cancel (`runnerconf down`), or on a signal:
    the first SIGINT / SIGTERM stops gracefully within stop_timeout, a second one cancels at
    once. SIGHUP (and, with --watch, a change of the files) reloads: the new topology is
    validated, then only what changed restarts (`runnerconf diff` shows what would). Each worker's start and stop is logged, then a one-line summary; a non-zero exit says
    why in one line. With WORKER names, only those start, with what they need (their
    depends_on, parents and children). With `runners:`, --runner starts one runner (one per
    machine); without it, every runner runs in this process.

    \b
    Examples:
      runnerconf up configs/hello.yaml
      runnerconf up bot.yaml --set runner.auto_end=false --env-file .env
      runnerconf up bot.yaml --dry-run
      runnerconf up bot.yaml bot --exit-code-from bot    # CI: one worker, its exit code
      runnerconf up bot.yaml --http 0.0.0.0:9100          # probes for Kubernetes
      runnerconf up configs/distributed.yaml --runner edge-1
      runnerconf up -f bot.yaml -f prod.yaml --watch
    """
    from runnerconf.config.build import resolve
    from runnerconf.config.errors import TopologyError
    from runnerconf.config.render import render_plan
    from runnerconf.config.selection import SelectionError
    from runnerconf.host import Control, run_up
    from runnerconf.http.server import parse_address
    from runnerconf.log_format import configure_logging

    configure_logging(log_level, log_format)  # type: ignore[arg-type]
    # Reading and building a topology makes many objects that all live on: the collector's
    # passes over them are wasted (a third of the start of 10,000 workers). `run_up` turns it
    # back on once the workers are built, and freezes what was built.
    gc.disable()
    if http is not None:
        try:
            parse_address(http)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--http") from exc
    if files and topology is not None:
        workers = (topology, *workers)  # with -f, every argument names a worker
        topology = None
    paths = topology_files(topology, files)
    model = load(paths, sets, env_files)
    if model.uses_kind("pipecat_pipeline"):
        from runnerconf.pipecat.logs import route_pipecat_logs

        route_pipecat_logs()  # before pipecat is imported: its lines are runnerconf's
    if runner_name is not None:
        check_runner_name(model, runner_name)
        if model.runners is None and model.runner.name is None:
            model.runner.name = runner_name  # --runner names the one runner of a plain topology
    for w in model.warnings:
        logger.warning("%s", w)
    try:
        plan = resolve(model, runner_name, workers)
    except SelectionError as exc:
        raise click.BadParameter(str(exc), param_hint="WORKER") from exc
    except TopologyError as exc:
        fail(exc.problems, EXIT_STARTUP)
    if exit_code_from is not None and exit_code_from not in {w.config.name for w in plan.workers}:
        started = ", ".join(w.config.name for w in plan.workers) or "none"
        raise click.BadParameter(f"{exit_code_from!r} is not a worker started here (workers: {started})", param_hint="--exit-code-from")
    if dry_run:
        click.echo(render_plan(plan), nl=False)
        return
    chosen_env = env_files_for(paths, env_files)
    control = Control(
        path=paths[0],
        reread=None if "-" in paths else (lambda: reread(paths, sets, chosen_env, runner_name)),
        watch=[p for p in (*paths, *chosen_env) if p != "-"] if watch else None,
    )
    if watch and "-" in paths:
        raise click.BadParameter("cannot watch standard input", param_hint="--watch")
    outcome = run_up(model, plan, runner=runner_name, exit_code_from=exit_code_from, http=http, control=control)
    report(outcome.problems)
    if outcome.code:
        logger.error("exiting with code %d: %s", outcome.code, outcome.reason, extra={"event": "up_exit", "code": outcome.code, "reason": outcome.reason})
    else:
        logger.info("exiting with code 0: %s", outcome.reason, extra={"event": "up_exit", "code": 0, "reason": outcome.reason})
    sys.exit(outcome.code)


def reread(paths: list[str], sets: list[Override], env_files: tuple[str, ...], runner_name: str | None) -> Topology:
    """The topology as the files say now (for a reload); raises TopologyError."""
    import warnings

    from runnerconf.cli.options import environ
    from runnerconf.config.loader import load_topology

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = load_topology(paths[0], environ=environ(env_files), overrides=sets, overlays=paths[1:])
    if runner_name is not None and model.runners is None and model.runner.name is None:
        model.runner.name = runner_name
    return model


def check_runner_name(model: Topology, name: str) -> None:
    """``--runner`` must name a runner of the topology (usage error, exit 2, otherwise)."""
    from runnerconf.config.models import NAME_PATTERN

    names = [s.name for s in model.runner_specs() if s.name]
    known = f"runners: {', '.join(names)}" if names else "this topology's one runner has no name"
    if not re.match(NAME_PATTERN, name):
        raise click.BadParameter(f"{name!r} is not a runner name ({known})", param_hint="--runner")
    if name in names:
        return
    if model.worker(name) is not None:
        raise click.BadParameter(f"{name!r} is a worker, not a runner ({known})", param_hint="--runner")
    if model.runners is not None or names:
        raise click.BadParameter(f"no runner named {name!r} in this topology ({known})", param_hint="--runner")


COMMANDS = [up]
