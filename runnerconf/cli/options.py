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

EXIT_CODES_HELP = """\b
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
#: Read when no topology is named, as Compose reads compose.yaml.
DEFAULT_FILES = ("runnerconf.yaml", "runnerconf.yml")
#: Read beside the topology when no --env-file is given (the process environment wins).
DEFAULT_ENV_FILE = ".env"

#: ``[TOPOLOGY]``: optional, since ``-f`` or a ``runnerconf.yaml`` here may name it instead.
topology_argument = click.argument("topology", required=False, metavar="[TOPOLOGY]")


def topology_files(topology: str | None, files: tuple[str, ...]) -> list[str]:
    """The files that make the topology: ``-f`` ones in order (later override earlier), else
    TOPOLOGY, else ``runnerconf.yaml`` in the current directory.

    Raises:
        click.UsageError: both or none given, or TOPOLOGY does not exist (exit 2).
    """
    if files:
        if topology is not None:
            raise click.UsageError(f"give the topology as TOPOLOGY or with -f/--file, not both (got {topology!r} and -f)")
        return list(files)
    if topology is not None:
        return [TOPOLOGY_FILE.convert(topology, None, None)]
    for name in DEFAULT_FILES:
        if os.path.isfile(name):
            return [name]
    raise click.UsageError("no topology given: name one (TOPOLOGY or -f FILE), or put a runnerconf.yaml in the current directory")


def env_files_for(files: list[str], env_files: tuple[str, ...]) -> tuple[str, ...]:
    """``--env-file`` files, or else the ``.env`` beside the (first) topology file if there is one."""
    if env_files or not files or files[0] == "-":
        return env_files
    beside = os.path.join(os.path.dirname(files[0]) or ".", DEFAULT_ENV_FILE)
    return (beside,) if os.path.isfile(beside) else ()


def _parse_sets(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[Override]:
    from runnerconf.config.overrides import parse_override

    try:
        return [parse_override(v) for v in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


def topology_inputs(fn: F) -> F:
    """``-f``, ``--set`` and ``--env-file``, shared by every command that reads a topology."""
    fn = click.option(
        "-f",
        "--file",
        "files",
        multiple=True,
        type=TOPOLOGY_FILE,
        metavar="FILE",
        help="Topology file (repeatable: later files override earlier ones, worker lists merge by name, "
        "`!reset` removes). Default: TOPOLOGY, else runnerconf.yaml here.",
    )(fn)
    fn = click.option(
        "--env-file",
        "env_files",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False),
        help="KEY=VALUE file for ${VAR} interpolation (repeatable; the environment wins). "
        "Default: the .env beside the topology, if there is one.",
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


def load(
    files: list[str], sets: list[Override], env_files: tuple[str, ...], *, interpolation: bool = True
) -> Topology:
    """The topology made of ``files`` (see :func:`topology_files`), or exit 1 with its problems."""
    from runnerconf.config.errors import TopologyError
    from runnerconf.config.loader import load_topology

    env = environ(env_files_for(files, env_files))
    with warnings.catch_warnings():
        # Deprecations are reported by the commands themselves, with their place in the file.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return load_topology(files[0], environ=env, overrides=sets, interpolation=interpolation, overlays=files[1:])
        except TopologyError as exc:
            fail(exc.problems, EXIT_INVALID)
