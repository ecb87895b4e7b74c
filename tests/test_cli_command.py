"""`runnerconf up` with supervised commands: no process is left behind, whatever way up exits."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from .helpers import group_alive

ROOT = Path(__file__).resolve().parents[1]


def up(topology: Path | str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runnerconf", "up", str(topology), "--log-format", "json", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_event(proc: subprocess.Popen[str], event: str, **match: object) -> dict[str, object]:
    assert proc.stderr is not None
    for line in proc.stderr:
        record = json.loads(line)
        if record.get("event") == event and all(record.get(k) == v for k, v in match.items()):
            return record
    raise AssertionError(f"up ended before {event} {match}")


def gone(pgid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def family(tmp_path: Path, *, sigterm: bool = True, extra: str = "") -> Path:
    f = tmp_path / "t.yaml"
    f.write_text(
        f"""runner: {{handle_sigterm: {str(sigterm).lower()}, stop_timeout: 5s}}
workers:
  - name: family
    type: command
    command: "sleep 300 & sleep 301 & echo spawned; wait"
    ready_line: spawned
{extra}"""
    )
    return f


def test_the_processes_example_runs_to_the_end() -> None:
    proc = up("configs/processes.yaml")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    records = [json.loads(line) for line in err.splitlines()]
    lines = [r["message"] for r in records if r.get("event") == "command_output"]
    assert lines[0] == "[relay] relay: listening on 127.0.0.1:7861"
    assert "[bot] bot: message 3/3 via relay port 7861" in lines
    assert lines[-2:] == ["[relay] relay: SIGTERM received, closing sessions", "[relay] relay: bye"]
    for r in records:
        if r.get("event") == "command_start":
            assert gone(int(r["pid"]))  # type: ignore[call-overload]


def test_sigint_stops_the_whole_process_group(tmp_path: Path) -> None:
    proc = up(family(tmp_path))
    pgid = int(wait_for_event(proc, "command_start")["pid"])  # type: ignore[call-overload]
    wait_for_event(proc, "command_output", message="[family] spawned")
    assert group_alive(pgid)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert gone(pgid)


def test_an_unhandled_sigterm_still_reaps_the_processes(tmp_path: Path) -> None:
    proc = up(family(tmp_path, sigterm=False))
    pgid = int(wait_for_event(proc, "command_start")["pid"])  # type: ignore[call-overload]
    wait_for_event(proc, "command_output", message="[family] spawned")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM  # up died of the signal, as the topology asked...
    assert gone(pgid)  # ...but took its processes with it


def test_sigkill_of_up_takes_its_direct_children_down(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(
        f"""workers:
  - name: child
    type: command
    command: ["{sys.executable}", "-c", "import time; print('up', flush=True); time.sleep(300)"]
    ready_line: up
"""
    )
    proc = up(f)
    pgid = int(wait_for_event(proc, "command_start")["pid"])  # type: ignore[call-overload]
    wait_for_event(proc, "command_output", message="[child] up")
    proc.kill()
    proc.communicate(timeout=30)
    assert gone(pgid)  # the kernel killed it with its parent (PR_SET_PDEATHSIG)


def test_a_crashing_neighbour_does_not_leave_processes_behind(tmp_path: Path) -> None:
    (tmp_path / "crasher.py").write_text(
        "import asyncio\nfrom runnerconf.workers.base_worker import BaseWorker\n"
        "class Crash(BaseWorker):\n"
        "    async def main(self):\n"
        "        await asyncio.sleep(0.5)\n"
        "        raise RuntimeError('boom')\n"
    )
    f = family(tmp_path, extra="    parent: crash\n  - name: crash\n    class: crasher:Crash\n")
    proc = up(f)
    pgid = int(wait_for_event(proc, "command_start")["pid"])  # type: ignore[call-overload]
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "boom" in err
    assert gone(pgid)


def test_a_missing_program_is_a_start_up_failure_naming_the_worker(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("workers:\n  - {name: ghost, type: command, command: [no-such-program-x]}\n")
    proc = up(f)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert f"{f}:2:44: error: workers[0].command[0]: worker 'ghost': program 'no-such-program-x' is not found on PATH" in err
