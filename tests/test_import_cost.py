"""Import cost does not creep back: help needs neither pydantic nor jsonschema (nor YAML, the
runtime or a bus), and `validate` does not load the runtime. Checked on what a fresh
interpreter has imported (sys.modules), never by timing."""

from __future__ import annotations

import json
import subprocess
import sys

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


def imported(*args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [["--help"], ["up", "--help"], ["validate", "--help"], ["diff", "--help"], ["ps", "--help"], ["--version"]])
def test_help_imports_neither_pydantic_nor_jsonschema(args: list[str]) -> None:
    modules = imported(*args)
    assert "runnerconf" in modules and "click" in modules  # the probe saw the command run
    assert not modules & {"pydantic", "pydantic_core", "jsonschema", "yaml", "asyncio", "redis", "pipecat"}, sorted(modules)


def test_validate_does_not_load_the_runtime() -> None:
    modules = imported("validate", "configs/hello.yaml")
    assert "pydantic" in modules and "runnerconf.config.loader" in modules  # it did validate
    assert not {m for m in modules if m.startswith(("runnerconf.workers", "runnerconf.bus", "runnerconf.config.build"))}
    assert not modules & {"asyncio", "jsonschema", "redis"}
