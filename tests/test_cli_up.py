"""`runnerconf up` as a real process: exit codes, logs, and real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PARTS = '''
import asyncio, sys
from runnerconf.workers.base_worker import BaseWorker


class Slow(BaseWorker):
    def __init__(self, name=None, *, log, end_delay=0.0, stubborn=False):
        super().__init__(name)
        self.log, self.end_delay, self.stubborn = log, end_delay, stubborn

    def note(self, text):
        with open(self.log, "a") as fh:
            fh.write(text + "\\n")

    async def on_start(self):
        self.note("start")
        print("READY", self.name, flush=True)

    async def on_end(self, reason):
        self.note(f"end:{reason}")

    async def on_cancel(self, reason):
        self.note(f"cancel:{reason}")

    async def main(self):
        if self.stubborn:
            for _ in range(3):
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    self.note("ignored cancel")
        await self.wait_for_stop()
        await asyncio.sleep(self.end_delay)
        self.note("main-done")


class Crash(BaseWorker):
    async def main(self):
        raise RuntimeError("crashed on purpose")


class Exploding(BaseWorker):
    def __init__(self, name=None):
        raise ConnectionError("no route to the model server")
'''


def write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "botparts.py").write_text(PARTS)
    f = tmp_path / "topology.yaml"
    f.write_text(body)
    return f


def up(*args: str, cwd: Path = ROOT, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "runnerconf", "up", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


def wait_ready(proc: subprocess.Popen[str], count: int = 1) -> None:
    assert proc.stdout is not None
    for _ in range(count):
        line = proc.stdout.readline()
        assert line.startswith("READY"), (line, proc.stderr.read() if proc.stderr else "")


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def test_up_runs_the_example_and_logs_each_worker_and_a_summary() -> None:
    code, out, err = finish(up("configs/hello.yaml"))
    assert code == 0, err
    assert out.splitlines() == [">> Hello, world!", ">> Hello, runnerconf!", ">> Hello, bots!"]
    assert "worker greeter started" in err and "worker printer started" in err
    assert "worker printer finished after" in err and "(parent 'greeter' finished)" in err
    *_, summary, last = err.rstrip().splitlines()
    assert summary.endswith("runner hello done: 2 finished, 0 failed, 0 cancelled")
    assert last.endswith("runnerconf.up: exiting with code 0: all root workers finished")


def test_json_logs_are_one_object_per_line() -> None:
    code, _, err = finish(up("configs/hello.yaml", "--log-format", "json"))
    assert code == 0
    records = [json.loads(line) for line in err.splitlines()]
    stopped = [r for r in records if r.get("event") == "worker_stopped"]
    assert {(r["worker"], r["outcome"]) for r in stopped} == {("greeter", "finished"), ("printer", "finished")}
    assert all(isinstance(r["duration"], float) for r in stopped)
    assert records[-2]["event"] == "runner_done" and records[-2]["finished"] == 2
    assert records[-1]["event"] == "up_exit" and records[-1]["code"] == 0


def test_a_failing_worker_exits_1_and_the_others_finish(tmp_path: Path) -> None:
    log = tmp_path / "log"
    f = write(
        tmp_path,
        f"""workers:
  - {{name: crash, class: "botparts:Crash"}}
  - {{name: calm, class: "botparts:Slow", params: {{log: "{log}"}}}}
""",
    )
    proc = up(str(f))
    wait_ready(proc)
    proc.send_signal(signal.SIGINT)  # the calm one runs until asked
    code, _, err = finish(proc)
    assert code == 1
    assert "worker crash failed after" in err and "RuntimeError: crashed on purpose" in err
    assert log.read_text().splitlines() == ["start", "end:SIGINT received", "main-done"]


def test_startup_failures_exit_3(tmp_path: Path) -> None:
    f = write(tmp_path, 'workers:\n  - {name: a, class: "botparts:Missing"}\n')
    code, _, err = finish(up(str(f)))
    assert code == 3
    assert f"{f}:2:22: error: workers[0].class: worker 'a': module 'botparts' has no attribute 'Missing'" in err
    assert "Traceback" not in err
    f = write(tmp_path, 'workers:\n  - {name: boom, class: "botparts:Exploding"}\n')
    code, _, err = finish(up(str(f)))
    assert code == 3
    assert "worker 'boom': botparts:Exploding(...) raised ConnectionError: no route to the model server" in err


def test_dry_run_prints_the_plan_and_starts_nothing(tmp_path: Path) -> None:
    log = tmp_path / "log"
    f = write(tmp_path, f'runner: {{name: plan}}\nworkers:\n  - {{name: s, class: "botparts:Slow", params: {{log: "{log}"}}}}\n')
    code, out, _ = finish(up(str(f), "--dry-run"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "bus async_queue"
    assert lines[1].startswith("runner plan: auto_end=True stop_timeout=10s")
    assert lines[3] == f'    - s: class botparts:Slow params={{"log": "{log}"}}'

    assert not log.exists()


def slow_topology(tmp_path: Path, *, sigterm: bool = True, end_delay: float = 0.3, on_signal: str = "end", stubborn: bool = False) -> tuple[Path, Path]:
    log = tmp_path / "log"
    f = write(
        tmp_path,
        f"""runner:
  name: sig
  handle_sigterm: {str(sigterm).lower()}
  on_signal: {on_signal}
  stop_timeout: 30s
  cancel_timeout: 300ms
workers:
  - name: slow
    class: botparts:Slow
    params: {{log: "{log}", end_delay: {end_delay}, stubborn: {str(stubborn).lower()}}}
""",
    )
    return f, log


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_stops_gracefully_and_exits_0(tmp_path: Path, sig: signal.Signals) -> None:
    f, log = slow_topology(tmp_path)
    proc = up(str(f))
    wait_ready(proc)
    proc.send_signal(sig)
    code, _, err = finish(proc)
    assert code == 0, err
    assert log.read_text().splitlines() == ["start", f"end:{sig.name} received", "main-done"]
    assert f"{sig.name} received, ending gracefully" in err
    assert "worker slow finished after" in err


@pytest.mark.parametrize(("second", "expected"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_second_signal_cancels_and_exits_128_plus_signal(tmp_path: Path, second: signal.Signals, expected: int) -> None:
    f, log = slow_topology(tmp_path, end_delay=60)
    proc = up(str(f))
    wait_ready(proc)
    proc.send_signal(signal.SIGINT)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "ending gracefully" in line:
            break
    proc.send_signal(second)
    code, _, err = finish(proc)
    assert code == expected, err
    assert log.read_text().splitlines() == ["start", "end:SIGINT received", f"cancel:{second.name} received"]
    assert "worker slow cancelled after" in err


def test_on_signal_cancel_makes_the_first_signal_forced(tmp_path: Path) -> None:
    f, log = slow_topology(tmp_path, end_delay=60, on_signal="cancel")
    proc = up(str(f))
    wait_ready(proc)
    proc.send_signal(signal.SIGTERM)
    code, _, _ = finish(proc)
    assert code == 143
    assert log.read_text().splitlines() == ["start", "cancel:SIGTERM received"]


def test_sigterm_not_handled_when_the_topology_says_so(tmp_path: Path) -> None:
    f, _ = slow_topology(tmp_path, sigterm=False)
    proc = up(str(f))
    wait_ready(proc)
    proc.send_signal(signal.SIGTERM)
    code, _, _ = finish(proc)
    assert code == -signal.SIGTERM


def test_a_worker_that_ignores_cancellation_cannot_hang_up(tmp_path: Path) -> None:
    f, log = slow_topology(tmp_path, stubborn=True)
    proc = up(str(f), "--set", "runner.stop_timeout=200ms")
    wait_ready(proc)
    proc.send_signal(signal.SIGINT)
    code, _, err = finish(proc)
    assert code == 1  # abandoned counts as a failure
    assert "abandoning 1 worker(s) that ignore cancellation: slow" in err
    assert "ignored cancel" in log.read_text()


def test_module_entry_point_and_version() -> None:
    out = subprocess.run([sys.executable, "-m", "runnerconf", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("runnerconf, version ")


def test_log_level_filters_the_log() -> None:
    code, out, err = finish(up("configs/hello.yaml", "--log-level", "warning"))
    assert code == 0 and len(out.splitlines()) == 3
    assert err == ""  # worker starts/stops and the summary are INFO
    code, _, err = finish(up("configs/hello.yaml", "--log-level", "debug"))
    assert code == 0 and " DEBUG " in err and "worker greeter started" in err


def test_env_file_feeds_variables(tmp_path: Path) -> None:
    env_file = tmp_path / "bot.env"
    env_file.write_text("GREETING=Howdy\n")
    code, out, _ = finish(up("configs/support-bot.yaml", "--env-file", str(env_file)))
    assert code == 0
    assert ">> HOWDY, ADA!" in out.splitlines()
