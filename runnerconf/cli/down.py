"""``runnerconf down``: end the runners of a topology on its network bus."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from runnerconf.cli.options import EXIT_INVALID, EXIT_STARTUP, load, topology_argument, topology_files, topology_inputs

if TYPE_CHECKING:
    from runnerconf.config.overrides import Override


@click.command(epilog="""\b
Exit codes:
  0  every runner that answered has stopped (or none is running)
  1  invalid topology, or a runner did not stop within --timeout
  2  usage error (e.g. the topology's bus is in-process: stop it with a signal)
  3  the bus cannot be reached
""")
@topology_argument
@click.option("--cancel", is_flag=True, help="Cancel at once instead of ending gracefully.")
@click.option("--runner", "runners", multiple=True, metavar="NAME", help="Only this runner (repeatable).")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for the runners to stop.")
@click.option("--reason", help="Reason passed to the runners' end/cancel.")
@topology_inputs
def down(
    topology: str | None,
    cancel: bool,
    runners: tuple[str, ...],
    timeout: float,
    reason: str | None,
    sets: list[Override],
    env_files: tuple[str, ...],
    files: tuple[str, ...],
) -> None:
    """End every runner of TOPOLOGY on its network bus, and wait until they have stopped.

    \b
    Examples:
      runnerconf down configs/distributed.yaml
      runnerconf down configs/distributed.yaml --runner edge-2 --cancel
    """
    import asyncio

    from runnerconf.bus.bus import BusError
    from runnerconf.cli.up import check_runner_name
    from runnerconf.config.build import build_bus
    from runnerconf.host import close_loop
    from runnerconf.log_format import configure_logging
    from runnerconf.workers.remote import stop_runners

    configure_logging("warning")
    model = load(topology_files(topology, files), sets, env_files)
    for name in runners:
        check_runner_name(model, name)
    if model.bus.type != "redis":
        raise click.UsageError(
            f"the topology's bus is {model.bus.type!r}, inside each `up` process: stop it with a signal (Ctrl-C)"
        )
    expected = [s.name for s in model.runner_specs() if s.name]
    try:
        bus = build_bus(model)
    except (ImportError, ValueError) as exc:  # the redis extra is not installed; the secret file is unusable
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
        close_loop(loop)
    if not result.found:
        click.echo("no runner is running on this topology's bus")
        return
    for name in result.found:
        if name in result.unconfirmed:
            click.echo(f"runner {name}: asked to {'cancel' if cancel else 'end'} (a pipecat runner: it does not say when it has stopped)")
            continue
        state = "stopped" if name in result.stopped else f"still running after {timeout:g}s"
        click.echo(f"runner {name}: {state}")
    if result.still_running:
        sys.exit(EXIT_INVALID)


COMMANDS = [down]
