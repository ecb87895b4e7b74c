"""The runnerconf command, as a user runs it (click's runner for quick commands)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from runnerconf import __version__
from runnerconf.cli import main
from runnerconf.config.schema import schema_json

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


BAD = """\
version: 1
runner:
  stop_timeout: soon
workers:
  - name: a
    class: m:C
    naem: 1
"""


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    return f


def test_version_and_help_with_examples_everywhere() -> None:
    code, out, _ = run("--version")
    assert code == 0 and __version__ in out
    for command in ("up", "validate", "schema", "config", "graph", "down"):
        code, out, _ = run(command, "--help")
        assert code == 0 and "Examples:" in out, command
    for args in (["--help"], ["up", "--help"], ["validate", "--help"]):
        code, out, _ = run(*args)
        # One code a line, as written (click rewraps a paragraph not marked as preformatted).
        lines = [line.strip() for line in out.splitlines()]
        assert "Exit codes:" in lines, args
        assert "130  forced stop by a second SIGINT (143 for SIGTERM)" in lines, args
        assert "2    usage error (unknown option, missing file, bad --set)" in lines, args


def test_validate_good_files() -> None:
    code, out, _ = run("validate", str(CONFIGS / "hello.yaml"), str(CONFIGS / "support-bot.yaml"))
    assert code == 0
    assert out == "2 file(s) checked: 0 error(s), 0 warning(s): ok\n"


def test_validate_text_reports_every_problem_with_place(bad_file: Path) -> None:
    code, out, _ = run("validate", str(bad_file))
    assert code == 1
    assert out.splitlines() == [
        f"{bad_file}:3:17: error: runner.stop_timeout: expected a duration such as 500ms, 10s, 2m or a number of seconds, got 'soon'",
        f"{bad_file}:7:5: error: workers[0].naem: unknown key 'naem'; did you mean 'name'? "
        "(expected one of: name, parent, active, depends_on, watch, required, check_dangling_tasks, class, params)",
        "1 file(s) checked: 2 error(s), 0 warning(s): failed",
    ]


def test_validate_json_format(bad_file: Path) -> None:
    code, out, _ = run("validate", "--format", "json", str(bad_file), str(CONFIGS / "legacy.yaml"))
    assert code == 1
    problems = json.loads(out)
    assert [(p["file"].endswith(name), p["line"], p["column"], p["path"], p["code"], p["severity"]) for p, name in zip(problems, ["bad.yaml", "bad.yaml", "legacy.yaml"])] == [
        (True, 3, 17, "runner.stop_timeout", "duration", "error"),
        (True, 7, 5, "workers[0].naem", "unknown-key", "error"),
        (True, 5, 1, "PipelineRunner", "deprecated-key", "warning"),
    ]
    assert set(problems[0]) == {"file", "line", "column", "path", "code", "severity", "message"}


def test_validate_github_format(bad_file: Path) -> None:
    code, out, _ = run("validate", "--format", "github", str(bad_file))
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith(f"::error file={bad_file},line=3,col=17,title=runnerconf duration::runner.stop_timeout: ")


def test_deprecations_warn_and_strict_fails() -> None:
    legacy = str(CONFIGS / "legacy.yaml")
    code, out, _ = run("validate", legacy)
    assert code == 0 and ": warning: " in out and "rename it to 'runner'" in out
    code, out, _ = run("validate", "--strict", legacy)
    assert code == 1 and out.endswith("0 error(s), 1 warning(s): failed\n")


def test_validate_does_not_import_user_code_unless_asked(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "sidefx.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from runnerconf.workers.base_worker import BaseWorker\n"
        "class W(BaseWorker):\n    def __init__(self, name=None, *, size: int):\n        super().__init__(name)\n"
    )
    f = tmp_path / "t.yaml"
    f.write_text("workers:\n  - {name: a, class: 'sidefx:W', params: {colour: red}}\n  - {name: b, class: 'sidefx:Nope'}\n")
    code, out, _ = run("validate", str(f))
    assert code == 0 and not marker.exists()
    code, out, _ = run("validate", "--imports", str(f))
    assert code == 1 and marker.exists()
    lines = out.splitlines()
    assert lines[0].startswith(f"{f}:2:42: error: workers[0].params: worker 'a': params do not fit sidefx:W:")
    assert lines[1] == f"{f}:3:22: error: workers[1].class: worker 'b': module 'sidefx' has no attribute 'Nope'"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    code, _, err = run("validate", str(tmp_path / "missing.yaml"))
    assert code == 2 and "does not exist" in err
    code, _, err = run("up", str(CONFIGS / "hello.yaml"), "--set", "runner.auto_end")
    assert code == 2 and "PATH=VALUE" in err
    code, _, err = run("up", str(CONFIGS / "hello.yaml"), "--runner", "someone-else")
    assert code == 2 and "no runner named 'someone-else'" in err
    code, _, err = run("graph", str(CONFIGS / "hello.yaml"), "--format", "png")
    assert code == 2
    bad_env = tmp_path / "bad.env"
    bad_env.write_text("NOT A LINE\n")
    code, _, err = run("config", str(CONFIGS / "hello.yaml"), "--env-file", str(bad_env))
    assert code == 2 and "bad.env:1: expected KEY=VALUE" in err


def test_schema_prints_and_writes(tmp_path: Path) -> None:
    code, out, _ = run("schema")
    assert code == 0 and out == schema_json()
    target = tmp_path / "s.json"
    code, out, _ = run("schema", "-o", str(target))
    assert code == 0 and out == "" and target.read_text() == schema_json()


def test_config_normalises_defaults_variables_and_overrides(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# greeting for tests\nexport GREETING='howdy'\nSUFFIX=\"!\"  \n")
    code, out, _ = run(
        "config",
        str(CONFIGS / "support-bot.yaml"),
        "--env-file",
        str(env_file),
        "--set",
        "runner.stop_timeout=1m",
        "--set",
        "workers.printer.params.prefix=::",
        env={"SUFFIX": "?"},
    )
    assert code == 0
    data = yaml.safe_load(out)
    assert data["runner"]["stop_timeout"] == 60.0
    assert data["runner"]["cancel_timeout"] == 0.5
    assert data["runner"]["on_signal"] == "end"  # a default, filled in
    greeter = data["workers"][0]
    assert greeter["processors"][1] == {"call": "runnerconf.examples.hello:reply", "params": {"greeting": "howdy"}}
    assert greeter["processors"][2]["params"] == {"suffix": "?"}  # the environment wins over the file
    assert data["workers"][1]["params"] == {"prefix": "::"}
    code, out, _ = run("config", "--format", "json", str(CONFIGS / "hello.yaml"))
    assert code == 0 and json.loads(out)["runner"]["name"] == "hello"


def test_config_variables(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text('runner:\n  name: "${NAME}"\n  stop_timeout: "${GRACE:-5s}"\nworkers: []\n')
    code, out, _ = run("config", str(f), "--variables", env={"GRACE": "1s"})
    assert code == 0
    assert out.splitlines() == [
        "GRACE  optional  set      default '5s'",
        "NAME   required  MISSING  no default",
    ]
    code, out, _ = run("config", str(f), "--variables", "--format", "json")
    assert [(v["name"], v["required"]) for v in json.loads(out)] == [("GRACE", False), ("NAME", True)]
    # Without --variables the missing variable is an error.
    code, _, err = run("config", str(f))
    assert code == 1 and "variable NAME is not set" in err


def test_graph_mermaid_and_dot() -> None:
    code, out, _ = run("graph", str(CONFIGS / "support-bot.yaml"))
    assert code == 0
    assert out.splitlines()[0] == "flowchart LR"
    assert "  w0 -.->|send_to| w1" in out and "  w0 -->|child| w2" in out
    code, out, _ = run("graph", "--format", "dot", str(CONFIGS / "support-bot.yaml"))
    assert code == 0 and out.startswith("digraph topology {")
    assert '"greeter" -> "printer" [label="send_to", style=dashed];' in out
    assert '"greeter" -> "planner" [label="child"];' in out


def test_invalid_topology_exits_1_without_traceback(bad_file: Path) -> None:
    for command in ("up", "config", "graph"):
        code, out, err = run(command, str(bad_file))
        assert code == 1, command
        assert "Traceback" not in err and "2 error(s)" in err
        assert f"{bad_file}:3:17: error:" in err


@pytest.mark.parametrize("example", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_config_output_is_itself_a_valid_topology(example: Path, tmp_path: Path) -> None:
    code, out, _ = run("config", str(example))
    assert code == 0
    normalised = tmp_path / "normalised.yaml"
    normalised.write_text(out)
    code, out, _ = run("validate", "--strict", str(normalised))
    assert code == 0, out


def test_a_missing_redis_extra_is_a_start_up_failure_with_the_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    distributed = str(CONFIGS / "distributed.yaml")
    code, _, err = run("up", distributed, "--runner", "edge-1", "--dry-run")
    assert code == 3
    assert "bus.type: RedisBus needs redis-py: pip install 'runnerconf[redis]'" in err
    assert "Traceback" not in err
    code, _, err = run("down", distributed)
    assert code == 3 and "pip install 'runnerconf[redis]'" in err
    code, out, _ = run("validate", distributed)  # validation imports nothing, the extra included
    assert code == 0, out
