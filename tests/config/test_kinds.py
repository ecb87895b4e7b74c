"""Worker kinds from packages: a test package, really installed with pip, declares three (one
with a Params model, one with a typed __init__, one whose module fails to import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runnerconf.config import TopologyError, build_runner, load_topology, resolve
from runnerconf.config.schema import topology_schema

ROOT = Path(__file__).resolve().parents[2]


def cli(target: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run([sys.executable, "-m", "runnerconf", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=60)


def test_a_kind_is_validated_by_its_model_without_importing_the_topology_modules(kinds_installed: Path, tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(
        """workers:
  - name: ears
    type: stt_pipeline
    params: {model: whisper-small, sample_rate: 8}
  - name: hello
    type: greeter
    params: {greetng: hi, times: many}
  - name: nothing
    type: stt_pipeline
  - {name: user-code, class: "not_importable_at_all:X"}
"""
    )
    with pytest.raises(TopologyError) as exc:
        load_topology(f)
    got = {(p.path, p.line, p.code) for p in exc.value.problems}
    assert got == {
        ("workers[0].params.sample_rate", 4, "greater-than-equal"),
        ("workers[1].params.greetng", 7, "unknown-key"),
        ("workers[1].params.times", 7, "int-parsing"),
        ("workers[2]", 8, "missing-key"),
    }, exc.value.problems
    assert "not_importable_at_all" not in sys.modules  # the topology's own code is never imported


async def test_a_kind_builds_and_runs(kinds_installed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    topology = load_topology(
        """runner: {handle_sigint: false}
workers:
  - {name: ears, type: stt_pipeline, params: {model: whisper-small}}
  - {name: hello, type: greeter, params: {greeting: bonjour, times: 2}}
"""
    )
    runner = await build_runner(topology, resolve(topology))
    await runner.run()
    out = capsys.readouterr().out.splitlines()
    assert sorted(out) == ["hello: bonjour", "hello: bonjour", "stt ears: whisper-small en 16000"]


def test_a_kind_whose_package_fails_is_one_clear_error(kinds_installed: Path, tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("workers:\n  - {name: x, type: broken}\n")
    proc = cli(kinds_installed, "validate", str(f))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert (
        "t.yaml:2:21: error: workers[0].type: worker kind 'broken' from runnerconf-test-kinds 1.2.3 "
        "(entry point broken = rc_test_kinds_broken:Thing) cannot be used: importing it raised ModuleNotFoundError"
    ) in proc.stdout
    assert proc.stdout.count("error:") == 1


def test_schema_has_a_branch_per_installed_kind_and_kinds_lists_them(kinds_installed: Path) -> None:
    schema = topology_schema()
    branches = schema["properties"]["workers"]["items"]["allOf"]
    consts = [b["if"]["properties"]["type"]["const"] for b in branches if "properties" in b["if"]]
    assert consts == ["pipeline", "command", "pipecat_pipeline", "greeter", "stt_pipeline"]
    stt = next(v for k, v in schema["$defs"].items() if "Stt" in k and "Params" not in k)
    assert "params" in stt["properties"]
    committed = topology_schema(installed=False)
    assert "stt_pipeline" not in json.dumps(committed)  # the committed schema has the built-in kinds only
    proc = cli(kinds_installed, "kinds", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == {"pipeline", "command", "pipecat_pipeline", "stt_pipeline", "greeter", "broken"}
    assert rows["stt_pipeline"]["source"] == "runnerconf-test-kinds 1.2.3 (entry point stt_pipeline = rc_test_kinds:SttPipeline)"
    assert [(p["name"], p["type"], p["required"]) for p in rows["stt_pipeline"]["params"]] == [
        ("model", "string", True),
        ("language", "string", False),
        ("sample_rate", "integer", False),
    ]
    assert [(p["name"], p["default"]) for p in rows["greeter"]["params"]] == [("greeting", "hi"), ("times", 1)]
    assert rows["broken"]["error"].startswith("importing it raised ModuleNotFoundError")
    text = cli(kinds_installed, "kinds")
    assert "stt_pipeline  (runnerconf-test-kinds 1.2.3" in text.stdout and "unavailable:" in text.stdout


def test_a_class_taking_kwargs_is_checked_against_its_params_model(tmp_path: Path) -> None:
    (tmp_path / "kw_workers.py").write_text(
        "from typing import TypedDict, Unpack\n"
        "from pydantic import BaseModel\n"
        "from runnerconf.workers.base_worker import BaseWorker\n"
        "class WithParams(BaseWorker):\n"
        "    class Params(BaseModel):\n"
        "        voice: str\n"
        "    def __init__(self, name=None, **kwargs):\n"
        "        super().__init__(name)\n"
        "class Opts(TypedDict, total=False):\n"
        "    speed: float\n"
        "class WithTypedKwargs(BaseWorker):\n"
        "    def __init__(self, name=None, **kwargs: Unpack[Opts]):\n"
        "        super().__init__(name)\n"
        "class Anything(BaseWorker):\n"
        "    def __init__(self, name=None, **kwargs):\n"
        "        super().__init__(name)\n"
    )
    f = tmp_path / "t.yaml"
    f.write_text(
        """workers:
  - {name: a, class: "kw_workers:WithParams", params: {vioce: x}}
  - {name: b, class: "kw_workers:WithTypedKwargs", params: {sped: 2}}
  - {name: c, class: "kw_workers:Anything", params: {whatever: 1}}
"""
    )
    with pytest.raises(TopologyError) as exc:
        resolve(load_topology(f))
    got = sorted((p.path, p.line) for p in exc.value.problems)
    assert got == [("workers[0].params", 2), ("workers[0].params.vioce", 2), ("workers[1].params.sped", 3)]
    messages = sorted(p.message for p in exc.value.problems)
    assert messages == [
        "missing required key 'voice'",
        "unknown key 'sped'; did you mean 'speed'? (expected one of: speed)",
        "unknown key 'vioce'; did you mean 'voice'? (expected one of: voice)",
    ]
    sys.modules.pop("kw_workers", None)
