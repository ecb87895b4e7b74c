"""The ``runnerconf`` command: a thin click layer over the library.

One module per command; each parses its arguments, calls the library and turns its exceptions
into messages and exit codes. A command's module is imported when it runs, and the library
inside the commands, so that ``--help`` and the commands that do not need it stay quick.
"""

from __future__ import annotations

from importlib import import_module

import click

from runnerconf._version import __version__
from runnerconf.cli.options import EXIT_CODES_HELP

__all__ = ["main"]


#: Each command and the module that defines it: a command's module is imported when that command
#: runs (``--help`` lists them all, so it imports them all).
COMMAND_MODULES = {
    "apply": "gitops",
    "config": "show",
    "diff": "gitops",
    "down": "down",
    "graph": "show",
    "kinds": "kinds",
    "ps": "gitops",
    "schema": "show",
    "up": "up",
    "validate": "validate",
}


class _Commands(click.Group):
    """The ``runnerconf`` group: its commands are found in :data:`COMMAND_MODULES`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMAND_MODULES, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is None:
            return super().get_command(ctx, cmd_name)
        commands = import_module(f"runnerconf.cli.{module}").COMMANDS
        return next(c for c in commands if c.name == cmd_name)


@click.group(
    cls=_Commands, epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="runnerconf")
def main() -> None:
    """Run asyncio bot topologies from a YAML file.

    \b
    Examples:
      runnerconf up configs/hello.yaml
      runnerconf validate configs/*.yaml
      runnerconf config configs/support-bot.yaml --variables
    """
