"""The ``runnerconf`` command: a thin click layer over the library.

One module per command; each parses its arguments, calls the library and turns its exceptions
into messages and exit codes. The library is imported inside the commands, so that ``--help``
and the commands that do not need it stay quick.
"""

from __future__ import annotations

import click

from runnerconf._version import __version__
from runnerconf.cli.options import EXIT_CODES_HELP

__all__ = ["main"]


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


from runnerconf.cli import down, gitops, kinds, show, up, validate  # noqa: E402  (each registers its commands)

for _module in (up, validate, show, kinds, down, gitops):
    for _command in _module.COMMANDS:
        main.add_command(_command)
