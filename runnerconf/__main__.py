"""``python -m runnerconf``."""

from runnerconf.cli import main

main(prog_name="runnerconf")
