"""What the commands share: options, loading a topology, reporting problems, exit codes."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from runnerconf.config.errors import Problem
    from runnerconf.config.models import Topology
    from runnerconf.config.overrides import Override

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_INVALID = 1  # invalid topology, or a worker failed during `up`
EXIT_USAGE = 2  # click's own code for usage errors
EXIT_STARTUP = 3  # an import that fails, a worker that cannot be built, a bus that cannot be reached

EXIT_CODES_HELP = """\\b
Exit codes:
  0    success; also a graceful stop after SIGINT / SIGTERM
  1    invalid topology, or a worker failed during `up`
  2    usage error (unknown option, missing file, bad --set)
  3    start-up failure (an import fails, a worker cannot be built,
       the bus cannot be reached)
  130  forced stop by a second SIGINT (143 for SIGTERM)
"""

#: A topology argument: an existing file, or ``-`` for standard input.
TOPOLOGY_FILE = click.Path(exists=True, dir_okay=False, allow_dash=True)


def _parse_sets(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[Override]:
    from runnerconf.config.overrides import parse_override

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


def no_interpolate_option(fn: F) -> F:
    """``--no-interpolate``: check structure without any variable set (``interpolation=False``)."""
    return click.option(
        "--no-interpolate",
        "interpolation",
        flag_value=False,
        default=True,
        help="Leave ${VAR} unexpanded: each stands for a value of the expected type, and "
        "${VAR:?msg} does not fail (for CI without secrets).",
    )(fn)


def environ(env_files: tuple[str, ...]) -> dict[str, str]:
    """The variables for ``${VAR}``: the env files' in order, then the process environment."""
    from runnerconf.config.envfile import EnvFileError, read_env_file

    env: dict[str, str] = {}
    for path in env_files:
        try:
            env.update(read_env_file(path))
        except EnvFileError as exc:
            raise click.BadParameter(str(exc), param_hint="--env-file") from exc
    env.update(os.environ)
    return env


def report(problems: list[Problem]) -> None:
    for p in problems:
        click.echo(str(p), err=True)


def fail(problems: list[Problem], code: int) -> NoReturn:
    report(problems)
    errors = sum(p.severity == "error" for p in problems)
    click.echo(f"{errors} error(s)", err=True)
    sys.exit(code)


def load(path: str, sets: list[Override], env_files: tuple[str, ...], *, interpolation: bool = True) -> Topology:
    """The topology, or exit 1 with its problems."""
    from runnerconf.config.errors import TopologyError
    from runnerconf.config.loader import load_topology

    env = environ(env_files)
    with warnings.catch_warnings():
        # Deprecations are reported by the commands themselves, with their place in the file.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return load_topology(path, environ=env, overrides=sets, interpolation=interpolation)
        except TopologyError as exc:
            fail(exc.problems, EXIT_INVALID)
