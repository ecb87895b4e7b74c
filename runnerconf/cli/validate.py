"""``runnerconf validate``: every problem of every file, for people and for CI."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from runnerconf.cli.options import EXIT_CODES_HELP, EXIT_INVALID, env_files_for, environ, no_interpolate_option, topology_files, topology_inputs
from runnerconf.config.discovery import DEFAULT_PATTERN, DiscoveryError, Found, find_topologies

if TYPE_CHECKING:
    from runnerconf.config.errors import Problem
    from runnerconf.config.overrides import Override

FORMATS = ["text", "json", "github", "sarif"]


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("paths", nargs=-1, type=click.Path(exists=True, allow_dash=True), metavar="[PATH]...")
@click.option("--imports", is_flag=True, help="Also import every class, factory and processor and check params.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text: file:line:col lines and a summary; json: a list of problems; "
    "github: workflow annotations; sarif: a SARIF 2.1.0 log for code scanning.",
)
@click.option("--strict", is_flag=True, help="Warnings (deprecations) fail too.")
@no_interpolate_option
@click.option(
    "--pattern",
    default=DEFAULT_PATTERN,
    show_default=True,
    metavar="REGEX",
    help="Which files in a directory are topologies (searched in the path), besides files whose "
    "first comments carry the modeline naming the schema.",
)
@click.option(
    "--only-topologies",
    is_flag=True,
    help="Skip named files that are not topologies by --pattern or modeline (for hooks given every YAML file).",
)
@topology_inputs
def validate(
    paths: tuple[str, ...],
    imports: bool,
    fmt: str,
    strict: bool,
    interpolation: bool,
    pattern: str,
    only_topologies: bool,
    sets: list[Override],
    env_files: tuple[str, ...],
    files: tuple[str, ...],
) -> None:
    """Check the topology files at PATH... and report every problem, without importing user code.

    A PATH is a file, `-` for standard input, or a directory searched recursively for topology
    files (hidden directories are skipped). With -f FILE..., those files are checked as one
    topology (later ones overlaid); with neither, runnerconf.yaml here.

    \b
    Examples:
      runnerconf validate configs/*.yaml
      runnerconf validate --no-interpolate --strict deploy/
      runnerconf validate --imports --strict bot.yaml
      runnerconf validate --format sarif deploy/ > runnerconf.sarif
      runnerconf validate -f bot.yaml -f prod.yaml
    """
    if files or not paths:
        if files and paths:
            raise click.UsageError("give files to check as PATH... or one topology with -f, not both")
        merged = topology_files(None, files)
        found = Found([merged[0]], 0)
        overlays = merged[1:]
    else:
        try:
            found = find_topologies(paths, pattern, only_topologies=only_topologies)
        except DiscoveryError as exc:
            raise click.BadParameter(str(exc), param_hint="PATH") from exc
        overlays = []
    envs: dict[str, dict[str, str]] = {}
    problems: list[Problem] = []
    for path in found.files:
        chosen = env_files_for([path], env_files)  # the .env beside each file, unless --env-file
        env = envs.get(",".join(chosen))
        if env is None:
            env = envs[",".join(chosen)] = environ(chosen)
        problems.extend(
            check_file(path, environ=env, overrides=sets, imports=imports, interpolation=interpolation, overlays=overlays)
        )
    errors = sum(p.severity == "error" for p in problems)
    warned = len(problems) - errors
    failed = bool(errors or (strict and warned))
    if fmt == "json":
        click.echo(json.dumps([p.to_dict() for p in problems], indent=2))
    elif fmt == "sarif":
        from runnerconf._version import __version__
        from runnerconf.config.reports import sarif_log

        click.echo(json.dumps(sarif_log(problems, version=__version__), indent=2))
    else:
        if fmt == "github":
            from runnerconf.config.reports import github_annotation

            for p in problems:
                click.echo(github_annotation(p))
        else:
            for p in problems:
                click.echo(str(p))
        skipped = f" ({found.skipped} skipped: not topologies)" if found.skipped else ""
        click.echo(
            f"{len(found.files)} file(s) checked{skipped}: {errors} error(s), {warned} warning(s): "
            f"{'failed' if failed else 'ok'}"
        )
    if failed:
        sys.exit(EXIT_INVALID)


def check_file(
    path: str,
    *,
    environ: Mapping[str, str],
    overrides: list[Override],
    imports: bool,
    interpolation: bool = True,
    overlays: list[str] | None = None,
) -> list[Problem]:
    """Every problem of one file (warnings included); ``imports`` also resolves import paths."""
    from runnerconf.config.document import read_topology_data
    from runnerconf.config.errors import TopologyError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            data, source_map, uses, problems = read_topology_data(
                path, environ=environ, overrides=overrides, interpolation=interpolation, overlays=overlays or ()
            )
            if not imports:
                from runnerconf.config.quick import quick_problems

                quick = quick_problems(data, source_map, problems)
                if quick is not None:
                    return quick  # valid: the answer without importing the models
            from runnerconf.config.loader import topology_from_data

            topology = topology_from_data(data, source_map, uses, problems)
        except TopologyError as exc:
            return exc.problems
    problems = topology.warnings
    if imports:
        if topology.uses_kind("pipecat_pipeline"):
            from runnerconf.pipecat.logs import route_pipecat_logs

            route_pipecat_logs()  # pipecat's import-time lines follow logging's level (warnings)
        from runnerconf.config.build import resolve  # imports the runtime: only when asked to

        try:
            resolve(topology)
        except TopologyError as exc:
            problems.extend(exc.problems)
    return problems


COMMANDS = [validate]
