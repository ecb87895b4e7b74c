"""``runnerconf validate``: every problem of every file, for people and for CI."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from runnerconf.cli.options import EXIT_CODES_HELP, EXIT_INVALID, TOPOLOGY_FILE, environ, topology_inputs

if TYPE_CHECKING:
    from runnerconf.config.errors import Problem
    from runnerconf.config.overrides import Override


@click.command(epilog=EXIT_CODES_HELP)
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
    env = environ(env_files)
    problems: list[Problem] = []
    for path in files:
        problems.extend(check_file(path, environ=env, overrides=sets, imports=imports))
    errors = sum(p.severity == "error" for p in problems)
    warned = len(problems) - errors
    if fmt == "json":
        click.echo(json.dumps([p.to_dict() for p in problems], indent=2))
    else:
        for p in problems:
            click.echo(github(p) if fmt == "github" else str(p))
        status = "ok" if not errors and not (strict and warned) else "failed"
        click.echo(f"{len(files)} file(s) checked: {errors} error(s), {warned} warning(s): {status}")
    if errors or (strict and warned):
        sys.exit(EXIT_INVALID)


def check_file(path: str, *, environ: Mapping[str, str], overrides: list[Override], imports: bool) -> list[Problem]:
    """Every problem of one file (warnings included); ``imports`` also resolves import paths."""
    from runnerconf.config.build import resolve
    from runnerconf.config.errors import TopologyError
    from runnerconf.config.loader import load_topology

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


def github(p: Problem) -> str:
    """A problem as a GitHub Actions workflow annotation."""

    def prop(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A").replace(":", "%3A").replace(",", "%2C")

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    where = f"{p.path}: " if p.path else ""
    return (
        f"::{p.severity} file={prop(p.file)},line={p.line},col={p.column},"
        f"title={prop('runnerconf ' + p.code)}::{data(where + p.message)}"
    )


COMMANDS = [validate]
