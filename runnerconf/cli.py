"""The ``runnerconf`` command: a thin click layer over :mod:`runnerconf.config`.

Commands parse arguments, call the library and turn its exceptions into messages and exit codes;
they hold no logic of their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

import click

from runnerconf import __version__
from runnerconf.bus.bus import BusError
from runnerconf.config.build import Plan, build_bus, resolve, run_topology
from runnerconf.config.envfile import EnvFileError, read_env_file
from runnerconf.config.errors import Problem, TopologyError
from runnerconf.config.loader import load_topology, read_topology_data
from runnerconf.config.models import NAME_PATTERN, Topology
from runnerconf.config.overrides import Override, parse_override
from runnerconf.config.render import normalised, render_graph, render_plan, variables_table
from runnerconf.config.schema import schema_json
from runnerconf.log_format import configure_logging
from runnerconf.workers.processes import reap_process_groups
from runnerconf.workers.group import RunnerGroup
from runnerconf.workers.remote import stop_runners
from runnerconf.workers.runner import WorkerRunner

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_INVALID = 1  # invalid topology, or a worker failed during `up`
EXIT_USAGE = 2  # click's own code for usage errors
EXIT_STARTUP = 3  # an import that fails, a worker that cannot be built, a bus that cannot be reached

EXIT_CODES_HELP = """\b
Exit codes:
  0    success; also a graceful stop after SIGINT / SIGTERM
  1    invalid topology, or a worker failed during `up`
  2    usage error (unknown option, missing file, bad --set)
  3    start-up failure (an import fails, a worker cannot be built,
       the bus cannot be reached)
  130  forced stop by a second SIGINT (143 for SIGTERM)
"""


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="runnerconf")
def main() -> None:
    """Run asyncio bot topologies from a YAML file.

    \b
    Examples:
      runnerconf up configs/hello.yaml
      runnerconf validate configs/*.yaml
      runnerconf config configs/support-bot.yaml --variables
    """


# -- shared options ------------------------------------------------------------------------------


def _parse_sets(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[Override]:
    try:
        return [parse_override(v) for v in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


def topology_inputs(fn: F) -> F:
    """``--set`` and ``--env-file``, shared by every command that reads a topology."""
    fn = click.option(
        "--env-file",
        "env_files",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False),
        help="KEY=VALUE file for ${VAR} interpolation (repeatable; the environment wins).",
    )(fn)
    fn = click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="PATH=VALUE",
        callback=_parse_sets,
        help="Override a value, e.g. workers.greeter.params.greeting=hi (repeatable).",
    )(fn)
    return fn


def _environ(env_files: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for path in env_files:
        try:
            env.update(read_env_file(path))
        except EnvFileError as exc:
            raise click.BadParameter(str(exc), param_hint="--env-file") from exc
    env.update(os.environ)
    return env


def _report(problems: list[Problem]) -> None:
    for p in problems:
        click.echo(str(p), err=True)


def _fail(problems: list[Problem], code: int) -> NoReturn:
    _report(problems)
    errors = sum(p.severity == "error" for p in problems)
    click.echo(f"{errors} error(s)", err=True)
    sys.exit(code)


def _load(path: str, sets: list[Override], env_files: tuple[str, ...]) -> Topology:
    environ = _environ(env_files)
    with warnings.catch_warnings():
        # Deprecations are reported by the commands themselves, with their place in the file.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return load_topology(path, environ=environ, overrides=sets)
        except TopologyError as exc:
            _fail(exc.problems, EXIT_INVALID)


# -- up ------------------------------------------------------------------------------------------


TOPOLOGY_FILE = click.Path(exists=True, dir_okay=False, allow_dash=True)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("topology", type=TOPOLOGY_FILE)
@click.option(
    "--runner",
    "runner_name",
    metavar="NAME",
    help="The runner to start (default: all of them, in this process; names a plain topology's runner).",
)
@topology_inputs
@click.option("--dry-run", is_flag=True, help="Resolve everything and print the plan; start nothing.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True, help="json: one object per line.")
def up(
    topology: str,
    runner_name: str | None,
    sets: list[Override],
    env_files: tuple[str, ...],
    dry_run: bool,
    log_level: str,
    log_format: str,
) -> None:
    """Load, validate, build and run TOPOLOGY until the runner ends.

    The runner ends by itself (auto_end), on an end/cancel (`runnerconf down`), or on a signal:
    the first SIGINT / SIGTERM (as the topology enables them) stops gracefully within
    stop_timeout, a second one cancels at once. Each worker's start and stop is logged, then a
    one-line summary. With `runners:`, --runner starts one runner (one per machine); without it,
    every runner runs in this process.

    \b
    Examples:
      runnerconf up configs/hello.yaml
      runnerconf up bot.yaml --set runner.auto_end=false --env-file .env
      runnerconf up bot.yaml --dry-run
      runnerconf up configs/distributed.yaml --runner edge-1
    """
    configure_logging(log_level, log_format)  # type: ignore[arg-type]
    model = _load(topology, sets, env_files)
    if runner_name is not None:
        _check_runner_name(model, runner_name)
        if model.runners is None and model.runner.name is None:
            model.runner.name = runner_name  # --runner names the one runner of a plain topology
    for w in model.warnings:
        logger.warning("%s", w)
    try:
        plan = resolve(model, runner_name)
    except TopologyError as exc:
        _fail(exc.problems, EXIT_STARTUP)
    if dry_run:
        click.echo(render_plan(plan), nl=False)
        return
    sys.exit(_run(model, plan, runner_name))


def _check_runner_name(model: Topology, name: str) -> None:
    """``--runner`` must name a runner of the topology (usage error, exit 2, otherwise)."""
    specs = model.runner_specs()
    names = [s.name for s in specs if s.name]
    known = f"runners: {', '.join(names)}" if names else "this topology's one runner has no name"
    if not re.match(NAME_PATTERN, name):
        raise click.BadParameter(f"{name!r} is not a runner name ({known})", param_hint="--runner")
    if name in names:
        return
    if model.worker(name) is not None:
        raise click.BadParameter(f"{name!r} is a worker, not a runner ({known})", param_hint="--runner")
    if model.runners is not None or names:
        raise click.BadParameter(f"no runner named {name!r} in this topology ({known})", param_hint="--runner")


def _run(topology: Topology, plan: Plan, runner_name: str | None) -> int:
    loop = asyncio.new_event_loop()
    try:
        with reap_process_groups():
            ran = loop.run_until_complete(run_topology(topology, plan, runner=runner_name))
    except TopologyError as exc:
        _report(exc.problems)
        return EXIT_STARTUP
    except BusError as exc:
        logger.error("start-up failed: %s", exc)
        return EXIT_STARTUP
    except KeyboardInterrupt:
        # SIGINT while building, or with handle_sigint: false.
        logger.warning("interrupted")
        return 128 + signal.SIGINT
    finally:
        _close_loop(loop)
    return exit_code(ran)


def exit_code(runner: WorkerRunner | RunnerGroup) -> int:
    """0, 1 when a worker failed, or 128 + signal number after a forced stop by a signal."""
    if runner.forced:
        return 128 + runner.signals_received[-1]
    return EXIT_INVALID if runner.failed else EXIT_OK


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
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


# -- validate ------------------------------------------------------------------------------------


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("files", nargs=-1, required=True, type=TOPOLOGY_FILE)
@click.option("--imports", is_flag=True, help="Also import every class, factory and processor and check params.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="text: file:line:col lines; json: a list of problems; github: workflow annotations.",
)
@click.option("--strict", is_flag=True, help="Warnings (deprecations) fail too.")
@topology_inputs
def validate(
    files: tuple[str, ...], imports: bool, fmt: str, strict: bool, sets: list[Override], env_files: tuple[str, ...]
) -> None:
    """Check topology FILES and report every problem, without importing user code.

    \b
    Examples:
      runnerconf validate configs/*.yaml
      runnerconf validate --imports --strict bot.yaml
      runnerconf validate --format github topologies/*.yaml
    """
    environ = _environ(env_files)
    problems: list[Problem] = []
    for path in files:
        problems.extend(check_file(path, environ=environ, overrides=sets, imports=imports))
    errors = sum(p.severity == "error" for p in problems)
    warned = len(problems) - errors
    if fmt == "json":
        click.echo(json.dumps([p.to_dict() for p in problems], indent=2))
    else:
        for p in problems:
            click.echo(_github(p) if fmt == "github" else str(p))
        status = "ok" if not errors and not (strict and warned) else "failed"
        click.echo(f"{len(files)} file(s) checked: {errors} error(s), {warned} warning(s): {status}")
    if errors or (strict and warned):
        sys.exit(EXIT_INVALID)


def check_file(path: str, *, environ: Mapping[str, str], overrides: list[Override], imports: bool) -> list[Problem]:
    """Every problem of one file (warnings included); ``imports`` also resolves import paths."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            topology = load_topology(path, environ=environ, overrides=overrides)
        except TopologyError as exc:
            return exc.problems
    problems = topology.warnings
    if imports:
        try:
            resolve(topology)
        except TopologyError as exc:
            problems.extend(exc.problems)
    return problems


def _github(p: Problem) -> str:
    def prop(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A").replace(":", "%3A").replace(",", "%2C")

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    where = f"{p.path}: " if p.path else ""
    return (
        f"::{p.severity} file={prop(p.file)},line={p.line},col={p.column},"
        f"title={prop('runnerconf ' + p.code)}::{data(where + p.message)}"
    )


# -- schema, config, graph -----------------------------------------------------------------------


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
def schema(output: str | None) -> None:
    """Print (or write) the JSON Schema of topology files.

    \b
    Examples:
      runnerconf schema > topology.schema.json
      runnerconf schema -o schema/topology.schema.json
    """
    text = schema_json()
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise click.BadParameter(f"cannot write {output!r}: {exc.strerror or exc}", param_hint="-o/--output") from exc


@main.command("config", epilog=EXIT_CODES_HELP)
@click.argument("topology", type=TOPOLOGY_FILE)
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@click.option("--variables", is_flag=True, help="List the environment variables the file uses instead.")
@topology_inputs
def config_cmd(topology: str, fmt: str, variables: bool, sets: list[Override], env_files: tuple[str, ...]) -> None:
    """Print TOPOLOGY normalised: defaults filled in, variables and overrides applied.

    \b
    Examples:
      runnerconf config configs/support-bot.yaml
      runnerconf config bot.yaml --set runner.stop_timeout=30s --format json
      runnerconf config bot.yaml --variables
    """
    if variables:
        environ = _environ(env_files)
        try:
            _, _, uses, _ = read_topology_data(topology, environ=environ, overrides=sets)
        except TopologyError as exc:
            _fail(exc.problems, EXIT_INVALID)
        click.echo(variables_table(uses, environ, "json" if fmt == "json" else "text"), nl=False)
        return
    click.echo(normalised(_load(topology, sets, env_files), fmt), nl=False)  # type: ignore[arg-type]


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("topology", type=TOPOLOGY_FILE)
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@topology_inputs
def graph(topology: str, fmt: str, sets: list[Override], env_files: tuple[str, ...]) -> None:
    """Draw TOPOLOGY's workers, parent -> child edges and send_to edges.

    \b
    Examples:
      runnerconf graph configs/support-bot.yaml
      runnerconf graph bot.yaml --format dot | dot -Tpng > bot.png
    """
    click.echo(render_graph(_load(topology, sets, env_files), fmt), nl=False)  # type: ignore[arg-type]


# -- down ----------------------------------------------------------------------------------------


@main.command(epilog="""\b
Exit codes:
  0  every runner that answered has stopped (or none is running)
  1  invalid topology, or a runner did not stop within --timeout
  2  usage error (e.g. the topology's bus is in-process: stop it with a signal)
  3  the bus cannot be reached
""")
@click.argument("topology", type=click.Path(exists=True, dir_okay=False))
@click.option("--cancel", is_flag=True, help="Cancel at once instead of ending gracefully.")
@click.option("--runner", "runners", multiple=True, metavar="NAME", help="Only this runner (repeatable).")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for the runners to stop.")
@click.option("--reason", help="Reason passed to the runners' end/cancel.")
@topology_inputs
def down(
    topology: str,
    cancel: bool,
    runners: tuple[str, ...],
    timeout: float,
    reason: str | None,
    sets: list[Override],
    env_files: tuple[str, ...],
) -> None:
    """End every runner of TOPOLOGY on its network bus, and wait until they have stopped.

    \b
    Examples:
      runnerconf down configs/distributed.yaml
      runnerconf down configs/distributed.yaml --runner edge-2 --cancel
    """
    configure_logging("warning")
    model = _load(topology, sets, env_files)
    for name in runners:
        _check_runner_name(model, name)
    if model.bus.type != "redis":
        raise click.UsageError(
            f"the topology's bus is {model.bus.type!r}, inside each `up` process: stop it with a signal (Ctrl-C)"
        )
    expected = [s.name for s in model.runner_specs() if s.name]
    try:
        bus = build_bus(model)
    except ImportError as exc:  # the redis extra is not installed
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_STARTUP)
    loop = asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(
            stop_runners(bus, cancel=cancel, runners=runners, expected=expected, reason=reason, timeout=timeout)
        )
    except BusError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_STARTUP)
    finally:
        _close_loop(loop)
    if not result.found:
        click.echo("no runner is running on this topology's bus")
        return
    for name in result.found:
        state = "stopped" if name in result.stopped else f"still running after {timeout:g}s"
        click.echo(f"runner {name}: {state}")
    if result.still_running:
        sys.exit(EXIT_INVALID)
