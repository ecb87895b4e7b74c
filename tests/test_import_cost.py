"""Import cost does not creep back: help needs neither pydantic nor jsonschema (nor YAML, the
runtime or a bus), and `validate` does not load the runtime. Checked on what a fresh
interpreter has imported (sys.modules), never by timing."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from .helpers import ROOT

PROBE = """
import json, sys
from runnerconf.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} | {m for m in sys.modules if m.startswith("runnerconf.")})), file=sys.stderr)
"""


def imported(*args: str, cache: str | None = None) -> set[str]:
    env = dict(os.environ) if cache is None else {**os.environ, "RUNNERCONF_CACHE_DIR": cache}
    result = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [["--help"], ["up", "--help"], ["validate", "--help"], ["diff", "--help"], ["ps", "--help"], ["--version"]])
def test_help_imports_neither_pydantic_nor_jsonschema(args: list[str]) -> None:
    modules = imported(*args)
    assert "runnerconf" in modules and "click" in modules  # the probe saw the command run
    assert not modules & {"pydantic", "pydantic_core", "jsonschema", "yaml", "asyncio", "redis", "pipecat"}, sorted(modules)


RUNTIME = ("runnerconf.workers", "runnerconf.bus", "runnerconf.config.build")


def test_validate_does_not_load_the_runtime(tmp_path: Path) -> None:
    for cache in ("", str(tmp_path)):  # no kept validator: the models validate (and keep one)
        modules = imported("validate", "configs/hello.yaml", cache=cache)
        assert "pydantic" in modules and "runnerconf.config.loader" in modules  # it did validate
        assert not {m for m in modules if m.startswith(RUNTIME)}
        assert not modules & {"asyncio", "jsonschema", "redis"}


def test_validate_of_a_valid_file_imports_no_pydantic_once_a_validator_is_kept(tmp_path: Path) -> None:
    imported("validate", "configs/hello.yaml", cache=str(tmp_path))
    modules = imported("validate", "configs/support-bot.yaml", "configs/legacy.yaml", cache=str(tmp_path))
    assert "runnerconf.config.quick" in modules and "pydantic_core" in modules  # the kept checker answered
    assert not modules & {"pydantic", "asyncio", "jsonschema", "redis"}, sorted(modules)
    assert not {m for m in modules if m.startswith((*RUNTIME, "runnerconf.config.models", "runnerconf.config.loader"))}
    # An invalid file is the models' to explain: they are imported then.
    modules = imported("validate", "tests/corpus/invalid/zero-backoff.yaml", cache=str(tmp_path))
    assert "pydantic" in modules and "runnerconf.config.messages" in modules


def test_each_command_is_found_in_its_module() -> None:
    # Command modules are imported when their command runs: the names must be right.
    from runnerconf.cli import COMMAND_MODULES, main

    defined = {}
    for path in (ROOT / "runnerconf" / "cli").glob("*.py"):
        module = importlib.import_module(f"runnerconf.cli.{path.stem}")
        defined.update({c.name: path.stem for c in getattr(module, "COMMANDS", [])})
    assert defined == COMMAND_MODULES
    ctx = click.Context(main)
    assert [main.get_command(ctx, n).name for n in main.list_commands(ctx)] == sorted(defined)  # type: ignore[union-attr]
