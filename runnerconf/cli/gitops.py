"""``runnerconf diff``, ``apply`` and ``ps``: the running system against the file."""

from __future__ import annotations

import json
import sys
import warnings
from typing import TYPE_CHECKING

import click

from runnerconf.cli.options import (
    EXIT_STARTUP,
    env_files_for,
    environ,
    load,
    topology_argument,
    topology_files,
    topology_inputs,
)

if TYPE_CHECKING:
    from runnerconf.config.models import Topology
    from runnerconf.config.overrides import Override

EXIT_SAME, EXIT_DIFFERENT, EXIT_TROUBLE = 0, 1, 2


def _side(source: str, overlays: tuple[str, ...], sets: list[Override], env_files: tuple[str, ...]) -> Topology:
    """One side of a diff: a file or ``git:REV:PATH``; any problem is exit 2 (as diff(1) says)."""
    import os

    from runnerconf.config.errors import TopologyError
    from runnerconf.config.gitsource import GitSourceError, is_git_source, read_git_source
    from runnerconf.config.loader import load_topology

    if is_git_source(source):
        try:
            text, name = read_git_source(source), source
        except GitSourceError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_TROUBLE)
        beside = source.rsplit(":", 1)[1]
    else:
        if not os.path.isfile(source) and source != "-":
            click.echo(f"error: {source!r}: no such file (expected a topology file or git:REV:PATH)", err=True)
            sys.exit(EXIT_TROUBLE)
        text, name, beside = source, None, source
    env = environ(env_files_for([beside], env_files))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return load_topology(text, environ=env, overrides=sets, filename=name, overlays=overlays)
        except TopologyError as exc:
            for p in exc.problems:
                click.echo(str(p), err=True)
            click.echo(f"error: {source} is not a valid topology", err=True)
            sys.exit(EXIT_TROUBLE)


@click.command(epilog="""\b
Exit codes:
  0  the two topologies are the same (after defaults, variables and overlays)
  1  they differ
  2  an error: a file is missing or invalid, a git revision cannot be read
""")
@click.argument("old")
@click.argument("new")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@topology_inputs
def diff(old: str, new: str, fmt: str, sets: list[Override], env_files: tuple[str, ...], files: tuple[str, ...]) -> None:
    """Show what changes from topology OLD to NEW and what applying it would do.

    OLD and NEW are files, or git:REV:PATH for a file as it is at a revision of the repository
    (read with `git show`). -f files are overlaid on both sides, and --set applies to both.

    \b
    Examples:
      runnerconf diff git:HEAD:bot.yaml bot.yaml
      runnerconf diff git:origin/main:deploy/bot.yaml deploy/bot.yaml --format json
      runnerconf diff old.yaml new.yaml -f prod.yaml
    """
    from runnerconf.config.diff import diff_topologies

    result = diff_topologies(_side(old, files, sets, env_files), _side(new, files, sets, env_files))
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        click.echo(result.render(), nl=False)
    sys.exit(EXIT_SAME if result.equal else EXIT_DIFFERENT)


def _network_bus(model: Topology) -> object:
    """The topology's network bus for a short-lived client, or exit 3 when it cannot be made."""
    from runnerconf.config.build import build_bus

    try:
        return build_bus(model)
    except (ImportError, ValueError) as exc:  # the redis extra is missing; the secret file is unusable
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_STARTUP)


def _check_wire(model: Topology, command: str) -> None:
    """``ps`` and ``apply`` speak runnerconf's control messages, which pipecat's wire cannot carry."""
    if getattr(model.bus, "wire", "runnerconf") == "pipecat":
        raise click.UsageError(
            f"`{command}` needs runnerconf's wire: on `wire: pipecat` the channel carries pipecat's messages only "
            "(run `up` on a channel of its own for the runnerconf runners, or send SIGHUP to reload)"
        )


def _run(coroutine: object) -> object:
    import asyncio

    from runnerconf.bus.bus import BusError
    from runnerconf.host import close_loop

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)  # type: ignore[arg-type]
    except BusError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_STARTUP)
    finally:
        close_loop(loop)


@click.command(epilog="""\b
Exit codes:
  0  listed (with --check: what runs is what the file says)
  1  invalid topology; with --check, drift: a runner or worker missing, extra or changed, or
     another revision running
  2  usage error
  3  nobody to ask: no `up` of this topology on this machine (in-process bus), or the bus
     cannot be reached
""")
@topology_argument
@click.option("--check", is_flag=True, help="Exit 1 when what runs differs from the file (drift).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for the runners to answer.")
@topology_inputs
def ps(
    topology: str | None, check: bool, fmt: str, timeout: float, sets: list[Override], env_files: tuple[str, ...], files: tuple[str, ...]
) -> None:
    """List the runners and workers of TOPOLOGY that are running, and what revision each runs.

    On a network bus the runners are asked over the bus; on the in-process bus, the `up`
    process of this file on this machine is asked through its control socket.

    \b
    Examples:
      runnerconf ps configs/distributed.yaml
      runnerconf ps bot.yaml --check            # CI / monitoring: exit 1 on drift
      runnerconf ps bot.yaml --format json
    """
    from runnerconf.control.drift import drift

    paths = topology_files(topology, files)
    model = load(paths, sets, env_files)
    expected = [s.name for s in model.runner_specs()]
    if model.bus.type == "async_queue":
        from runnerconf.control.local import ControlSocketError, ask

        try:
            answer = ask(paths[0], "status", timeout=timeout)
        except ControlSocketError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_STARTUP)
        statuses = answer.get("runners") or []
    else:
        from runnerconf.control.remote import ask_status

        _check_wire(model, "ps")
        statuses = _run(ask_status(_network_bus(model), [n for n in expected if n], timeout))  # type: ignore[arg-type]
    problems = drift(model, statuses)  # type: ignore[arg-type]
    if fmt == "json":
        from runnerconf.config.revision import make_revision

        click.echo(json.dumps({"revision": make_revision(model).id, "runners": statuses, "drift": problems}, indent=2))
    else:
        click.echo(_table(statuses))  # type: ignore[arg-type]
        if problems:
            click.echo("drift:\n" + "\n".join(f"  {line}" for line in problems))
        elif check:
            click.echo("in sync with the file")
    if check and problems:
        sys.exit(1)


def _table(statuses: list[dict[str, object]]) -> str:
    if not statuses:
        return "no runner is running"
    rows = [("RUNNER", "REVISION", "WORKER", "STATE", "UPTIME", "RESTARTS")]
    for s in statuses:
        for w in s.get("workers") or []:  # type: ignore[attr-defined]
            uptime = w.get("uptime")
            rows.append((
                str(s.get("runner")), str(s.get("revision")), str(w.get("name")), str(w.get("state")),
                f"{uptime:.0f}s" if isinstance(uptime, (int, float)) else "-", str(w.get("restarts", 0)),
            ))  # fmt: skip
        if not s.get("workers"):
            rows.append((str(s.get("runner")), str(s.get("revision")), "-", "-", "-", "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


@click.command(epilog="""\b
Exit codes:
  0  every runner applied the revision
  1  invalid topology, or a runner refused or failed to apply it, or did not answer within
     --timeout
  2  usage error (e.g. the topology's bus is in-process: send the `up` process SIGHUP)
  3  the bus cannot be reached
""")
@topology_argument
@click.option("--runner", "runners", multiple=True, metavar="NAME", help="Only this runner (repeatable).")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for every runner's answer.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@topology_inputs
def apply(
    topology: str | None, runners: tuple[str, ...], timeout: float, fmt: str, sets: list[Override], env_files: tuple[str, ...], files: tuple[str, ...]
) -> None:
    """Send TOPOLOGY as a new revision to its running runners: each applies its own part
    (added workers start, removed ones stop, changed ones restart, the rest keep running) and
    says what it did.

    \b
    Examples:
      runnerconf apply configs/distributed.yaml
      runnerconf apply -f bot.yaml -f prod.yaml --runner edge-2
    """
    from runnerconf.cli.up import check_runner_name
    from runnerconf.config.revision import make_revision
    from runnerconf.control.remote import apply_revision

    paths = topology_files(topology, files)
    model = load(paths, sets, env_files)
    for name in runners:
        check_runner_name(model, name)
    if model.bus.type == "async_queue":
        raise click.UsageError(
            "the topology's bus is in-process: its runners are inside one `up` process; reload it with SIGHUP (or run it with --watch)"
        )
    _check_wire(model, "apply")
    if not getattr(model.bus, "signed", False):
        raise click.UsageError(
            "apply changes what the runners run (it names code for them to import): it needs a signed bus; "
            "set bus.secret (the runners refuse revisions on an unsigned one)"
        )
    names = list(runners) or [s.name for s in model.runner_specs() if s.name]
    if not names:
        raise click.UsageError("the topology's runner has no name: give it one (runner.name) so that it can be addressed")
    revision = make_revision(model, paths[0])
    replies = _run(apply_revision(_network_bus(model), revision, names, timeout))  # type: ignore[arg-type]
    report = {}
    for name in names:
        reply = replies.get(name)  # type: ignore[attr-defined]
        if reply is None:
            report[name] = {"ok": False, "summary": f"no answer within {timeout:g}s"}
        else:
            report[name] = {"ok": reply.ok, **reply.outcome}
    if fmt == "json":
        click.echo(json.dumps({"revision": revision.id, "git": revision.git, "runners": report}, indent=2))
    else:
        click.echo(f"revision {revision.label}")
        for name, r in report.items():
            click.echo(f"  runner {name}: {'ok' if r['ok'] else 'FAILED'}: {r.get('summary') or r.get('error')}")
    if not all(r["ok"] for r in report.values()):
        sys.exit(1)


COMMANDS = [diff, apply, ps]
