"""Several files as one topology (-f), x-* keys, !reset, the default file and the .env beside it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runnerconf.config.errors import TopologyError
from runnerconf.config.loader import load_topology

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
x-printer: &printer
  class: runnerconf.examples.hello:Printer
runner:
  name: bot
  stop_timeout: 5s
  x-note: the runner's own note
workers:
  - name: a
    <<: *printer
    params: {prefix: "a> ", stream: null}
  - name: b
    <<: *printer
  - name: c
    type: command
    command: [sleep, "1"]
    env: {x-keep: kept, MODE: base}
"""

PROD = """\
runner: {stop_timeout: 10s}
workers:
  - name: a
    params: {prefix: "A> "}
  - !reset {name: b}
  - name: c
    env: {MODE: prod}
    restart: !reset null
  - name: d
    class: runnerconf.examples.hello:Printer
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_later_files_override_earlier_ones(tmp_path: Path) -> None:
    base, prod = write(tmp_path, "base.yaml", BASE), write(tmp_path, "prod.yaml", PROD)
    topology = load_topology(base, overlays=[prod], environ={})
    assert topology.runner.stop_timeout == 10.0 and topology.runner.name == "bot"  # mappings merge
    assert [w.name for w in topology.workers] == ["a", "c", "d"]  # merged by name; b removed; d appended
    a = topology.worker("a")
    assert a is not None and a.params == {"prefix": "A> ", "stream": None}  # params merge key by key
    c = topology.worker("c")
    assert c is not None and c.env == {"x-keep": "kept", "MODE": "prod"}  # env is passed as written


def test_an_error_names_the_file_that_set_the_value(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", BASE)
    bad = write(tmp_path, "bad.yaml", """\
        workers:
          - name: c
            restart: sometimes
          - name: e
            type: pipelin
    """)
    with pytest.raises(TopologyError) as exc:
        load_topology(base, overlays=[bad], environ={})
    found = {(Path(p.file).name, p.line, p.column, p.path) for p in exc.value.problems}
    assert ("bad.yaml", 3, 14, "workers[2].restart") in found
    assert any(f == "bad.yaml" and line == 5 and path.startswith("workers[3]") for f, line, _, path in found)


def test_positions_survive_a_removal_in_the_base(tmp_path: Path) -> None:
    # c moves up one place when b is removed: its error still points at base.yaml's line.
    base = write(tmp_path, "base.yaml", BASE.replace("command: [sleep, \"1\"]", "command: []"))
    prod = write(tmp_path, "prod.yaml", "workers:\n  - !reset {name: b}\n")
    with pytest.raises(TopologyError) as exc:
        load_topology(base, overlays=[prod], environ={})
    [problem] = exc.value.problems
    assert (Path(problem.file).name, problem.line, problem.path) == ("base.yaml", 15, "workers[1].command")


def test_x_keys_are_dropped_at_any_level_and_reset_works_in_one_file(tmp_path: Path) -> None:
    single = write(tmp_path, "one.yaml", """\
        x-top: {anything: [1, 2]}
        runner: {name: r, x-why: because, stop_timeout: !reset 3s}
        workers:
          - {name: w, class: "runnerconf.examples.hello:Printer", x-owner: team-a}
          - !reset {name: gone}
    """)
    topology = load_topology(single, environ={})
    assert topology.runner.stop_timeout == 10.0  # back to the default
    assert [w.name for w in topology.workers] == ["w"]


def test_runners_merge_by_name_and_so_do_their_workers(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", """\
        runners:
          - name: edge-1
            workers: [{name: t, class: "runnerconf.examples.hello:Printer"}]
          - name: edge-2
            workers: [{name: u, class: "runnerconf.examples.hello:Printer"}]
    """)
    over = write(tmp_path, "over.yaml", """\
        runners:
          - name: edge-2
            stop_timeout: 1s
            workers: [{name: v, class: "runnerconf.examples.hello:Printer"}]
    """)
    topology = load_topology(base, overlays=[over], environ={})
    assert topology.runners is not None
    assert [(r.name, [w.name for w in r.workers], r.stop_timeout) for r in topology.runners] == [
        ("edge-1", ["t"], 10.0),
        ("edge-2", ["u", "v"], 1.0),
    ]


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("GREETING", "PREFIX")}
    return subprocess.run(
        [sys.executable, "-m", "runnerconf", *args], cwd=cwd, env={**environ, **(env or {})}, capture_output=True, text=True, timeout=60
    )


def test_the_cli_takes_f_repeatedly_and_defaults_to_runnerconf_yaml(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    write(tmp_path, "prod.yaml", PROD)
    result = run("config", "-f", "base.yaml", "-f", "prod.yaml", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"name": "d"' in result.stdout and '"name": "b"' not in result.stdout and "x-note" not in result.stdout
    assert run("validate", "-f", "base.yaml", "-f", "prod.yaml", cwd=tmp_path).returncode == 0
    result = run("validate", "-f", "base.yaml", "-f", "missing.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "missing.yaml" in result.stderr

    result = run("config", cwd=tmp_path)
    assert result.returncode == 2 and "runnerconf.yaml" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "runnerconf.yaml").write_text((tmp_path / "base.yaml").read_text())
    result = run("config", cwd=tmp_path)
    assert result.returncode == 0 and "name: bot" in result.stdout
    assert run("validate", cwd=tmp_path).returncode == 0
    result = run("config", "base.yaml", "-f", "prod.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "not both" in result.stderr


def test_the_env_file_beside_the_topology_is_read_by_default(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    write(tmp_path, "deploy/bot.yaml", """\
        workers:
          - name: p
            class: runnerconf.examples.hello:Printer
            params: {prefix: "${PREFIX:-none}"}
    """)
    write(tmp_path, "deploy/.env", "PREFIX=from-dotenv\n")
    write(tmp_path, "other.env", "PREFIX=from-env-file\n")
    assert "prefix: from-dotenv" in run("config", "deploy/bot.yaml", cwd=tmp_path).stdout
    assert "prefix: from-environment" in run("config", "deploy/bot.yaml", cwd=tmp_path, env={"PREFIX": "from-environment"}).stdout
    # --env-file replaces the .env (it is not read as well).
    assert "prefix: from-env-file" in run("config", "deploy/bot.yaml", "--env-file", "other.env", cwd=tmp_path).stdout
    write(tmp_path, "other.env", "OTHER=1\n")
    assert "prefix: none" in run("config", "deploy/bot.yaml", "--env-file", "other.env", cwd=tmp_path).stdout
