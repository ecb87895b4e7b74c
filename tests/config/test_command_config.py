"""`type: command` workers and `depends_on` in topology files."""

from __future__ import annotations

from pathlib import Path

import pytest

from runnerconf.config import TopologyError, build_runner, load_topology, resolve
from runnerconf.config.models import CommandWorkerConfig
from runnerconf.workers.command import CommandWorker

FULL = """\
workers:
  - name: bot
    type: command
    command: ["python3", "-m", "myapp.bot", "--port", "${PORT:-7860}", 8]
    cwd: ./bots
    env: {LOG_LEVEL: info, WORKERS: 2, DEBUG: false}
    stop_signal: SIGINT
    stop_timeout: 20s
    restart: on-failure
    max_restarts: 5
    backoff: {initial: 1s, max: 30s}
    ready_line: "listening on"
    ready_timeout: 1m
  - name: shell
    type: command
    command: "echo hi && sleep 1"
    restart: no
    depends_on: [bot]
"""


def problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(TopologyError) as exc:
        load_topology(text, environ={})
    return [(p.path, p.code) for p in exc.value.problems]


def test_the_issue_example_loads() -> None:
    t = load_topology(FULL, environ={})
    bot, shell = t.workers
    assert isinstance(bot, CommandWorkerConfig) and isinstance(shell, CommandWorkerConfig)
    assert bot.command == ["python3", "-m", "myapp.bot", "--port", "7860", "8"]
    assert (bot.stop_signal, bot.stop_timeout, bot.restart, bot.max_restarts) == ("SIGINT", 20.0, "on-failure", 5)
    assert (bot.backoff.initial, bot.backoff.max, bot.ready_timeout) == (1.0, 30.0, 60.0)
    assert shell.restart == "no"  # YAML 1.2: an unquoted `no` is the string, the policy meant
    assert shell.command == "echo hi && sleep 1" and [(d.name, d.condition) for d in shell.depends_on] == [("bot", "ready")]


@pytest.mark.parametrize(
    ("worker", "expected"),
    [
        ("{name: a, type: command, command: []}", [("workers[0].command", "command")]),
        ("{name: a, type: command, command: 3}", [("workers[0].command", "command")]),
        ("{name: a, type: command}", [("workers[0]", "missing-key")]),
        ("{name: a, type: command, command: x, restart: sometimes}", [("workers[0].restart", "bad-choice")]),
        ("{name: a, type: command, command: x, stop_signal: SIGSTOP}", [("workers[0].stop_signal", "bad-choice")]),
        ("{name: a, type: command, command: x, ready_line: '(unclosed'}", [("workers[0].ready_line", "regex")]),
        ("{name: a, type: command, command: x, backoff: {intial: 1s}}", [("workers[0].backoff.intial", "unknown-key")]),
        ("{name: a, type: command, command: x, max_restarts: -1}", [("workers[0].max_restarts", "greater-than-equal")]),
        ("{name: a, type: command, command: x, depends_on: [a]}", [("workers[0].depends_on[0]", "self-reference")]),
        ("{name: a, type: command, command: x, depends_on: [zz]}", [("workers[0].depends_on[0]", "unknown-worker")]),
    ],
)
def test_bad_command_workers(worker: str, expected: list[tuple[str, str]]) -> None:
    assert problems(f"workers:\n  - {worker}\n") == expected


def test_depends_on_cycles_are_errors() -> None:
    text = """workers:
  - {name: a, class: "m:C", depends_on: [b]}
  - {name: b, class: "m:C", depends_on: [c]}
  - {name: c, class: "m:C", depends_on: [a]}
  - {name: d, class: "m:C", depends_on: [a]}
"""
    with pytest.raises(TopologyError) as exc:
        load_topology(text)
    (p,) = exc.value.problems
    assert (p.path, p.code, p.line) == ("workers[0].depends_on", "depends-on-cycle", 2)
    assert p.message == "depends_on forms a cycle (they would wait for each other): a -> b -> c -> a"


def test_resolve_checks_programs_and_cwd_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "bots").mkdir()
    script = tmp_path / "bots" / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    (tmp_path / "bots" / "plain.sh").write_text("echo hi\n")
    f = tmp_path / "t.yaml"
    f.write_text(
        """workers:
  - {name: ok, type: command, command: [./run.sh], cwd: bots}
  - {name: on-path, type: command, command: [sh, -c, "true"]}
  - {name: missing, type: command, command: [no-such-program-x]}
  - {name: not-exec, type: command, command: [./plain.sh], cwd: bots}
  - {name: no-dir, type: command, command: [sh], cwd: nowhere}
  - {name: shell, type: command, command: "no-such-program-x --flag"}
"""
    )
    with pytest.raises(TopologyError) as exc:
        resolve(load_topology(f))
    assert [(p.path, p.line, p.code, p.message) for p in exc.value.problems] == [
        ("workers[2].command[0]", 4, "command-not-found", "worker 'missing': program 'no-such-program-x' is not found on PATH"),
        ("workers[3].command[0]", 5, "command-not-found", "worker 'not-exec': program './plain.sh' is not executable"),
        ("workers[4].cwd", 6, "bad-cwd", f"worker 'no-dir': working directory {str(tmp_path / 'nowhere')!r} does not exist"),
    ]


async def test_build_makes_command_workers(tmp_path: Path) -> None:
    (tmp_path / "bots").mkdir()
    f = tmp_path / "t.yaml"
    f.write_text(FULL.replace("python3", "sh"))
    runner = await build_runner(load_topology(f, environ={}))
    bot = runner.get_worker("bot")
    assert isinstance(bot, CommandWorker)
    assert bot.cwd == str(tmp_path / "bots")
    assert bot.env == {"LOG_LEVEL": "info", "WORKERS": "2", "DEBUG": "false"}
    assert (bot.stop_signal.name, bot.stop_timeout, bot.restart, bot.max_restarts) == ("SIGINT", 20.0, "on-failure", 5)
    assert bot.ready_pattern is not None and bot.ready_pattern.pattern == "listening on"
    shell = runner.get_worker("shell")
    assert shell is not None and shell.depends_on == ["bot"]
