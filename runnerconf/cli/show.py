"""``runnerconf schema``, ``config`` and ``graph``: views of the format and of a topology."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from runnerconf.cli.options import (
    EXIT_CODES_HELP,
    EXIT_INVALID,
    env_files_for,
    environ,
    fail,
    load,
    no_interpolate_option,
    topology_argument,
    topology_files,
    topology_inputs,
)

if TYPE_CHECKING:
    from runnerconf.config.overrides import Override


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
def schema(output: str | None) -> None:
    """Print (or write) the JSON Schema of topology files.

    \b
    Examples:
      runnerconf schema > topology.schema.json
      runnerconf schema -o schema/topology.schema.json
    """
    from runnerconf.config.schema import schema_json

    text = schema_json(installed=True)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise click.BadParameter(f"cannot write {output!r}: {exc.strerror or exc}", param_hint="-o/--output") from exc


@click.command("config", epilog=EXIT_CODES_HELP)
@topology_argument
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@click.option("--variables", is_flag=True, help="List the environment variables the file uses instead.")
@no_interpolate_option
@topology_inputs
def config_cmd(
    topology: str | None,
    fmt: str,
    variables: bool,
    interpolation: bool,
    sets: list[Override],
    env_files: tuple[str, ...],
    files: tuple[str, ...],
) -> None:
    """Print TOPOLOGY normalised: defaults filled in, variables and overrides applied.

    \b
    Examples:
      runnerconf config configs/support-bot.yaml
      runnerconf config bot.yaml --set runner.stop_timeout=30s --format json
      runnerconf config bot.yaml --variables
    """
    from runnerconf.config.errors import TopologyError
    from runnerconf.config.loader import read_topology_data
    from runnerconf.config.render import normalised, variables_table

    paths = topology_files(topology, files)
    if variables:
        env = environ(env_files_for(paths, env_files))
        try:
            _, _, uses, _ = read_topology_data(paths[0], environ=env, overrides=sets, interpolation=interpolation, overlays=paths[1:])
        except TopologyError as exc:
            fail(exc.problems, EXIT_INVALID)
        click.echo(variables_table(uses, env, "json" if fmt == "json" else "text"), nl=False)
        return
    click.echo(normalised(load(paths, sets, env_files, interpolation=interpolation), fmt), nl=False)  # type: ignore[arg-type]


@click.command(epilog=EXIT_CODES_HELP)
@topology_argument
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@no_interpolate_option
@topology_inputs
def graph(
    topology: str | None, fmt: str, interpolation: bool, sets: list[Override], env_files: tuple[str, ...], files: tuple[str, ...]
) -> None:
    """Draw TOPOLOGY's workers, parent -> child edges and send_to edges.

    \b
    Examples:
      runnerconf graph configs/support-bot.yaml
      runnerconf graph bot.yaml --format dot | dot -Tpng > bot.png
    """
    from runnerconf.config.render import render_graph

    model = load(topology_files(topology, files), sets, env_files, interpolation=interpolation)
    click.echo(render_graph(model, fmt), nl=False)  # type: ignore[arg-type]


COMMANDS = [schema, config_cmd, graph]
