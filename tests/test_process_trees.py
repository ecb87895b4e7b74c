"""No process is left behind when `up` exits, whatever the way and however a process detaches:
real processes under a real `runnerconf up` (Linux: the keeper)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runnerconf.workers.command import CommandWorker
from runnerconf.workers.processes import USE_KEEPER

from .helpers import ROOT

pytestmark = pytest.mark.skipif(not USE_KEEPER, reason="the keeper needs Linux (prctl); elsewhere the promise is narrower")

TREE = ROOT / "tests" / "scripts" / "tree.py"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def dead_soon(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def topology(tmp_path: Path, mode: str, *, stay: bool = False, extra: str = "") -> tuple[Path, Path]:
    pidfile = tmp_path / f"{mode}.pid"
    args = [sys.executable, str(TREE), mode, str(pidfile)] + (["--stay"] if stay else [])
    f = tmp_path / "t.yaml"
    f.write_text(
        f"""runner: {{stop_timeout: 5s, handle_sigterm: true}}
workers:
  - name: tree
    type: command
    command: {args!r}
    ready_line: spawned
{extra}"""
    )
    return f, pidfile


def up(f: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runnerconf", "up", str(f)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_pid(pidfile: Path, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while not pidfile.exists() or not pidfile.read_text().strip():
        if time.monotonic() > deadline:
            raise AssertionError(f"{pidfile} was never written")
        time.sleep(0.02)
    return int(pidfile.read_text())


@pytest.mark.parametrize("mode", ["setsid", "daemon", "stdout"])
def test_what_a_command_leaves_behind_when_it_exits_is_killed_and_up_does_not_block(tmp_path: Path, mode: str) -> None:
    f, pidfile = topology(tmp_path, mode)
    t0 = time.monotonic()
    proc = up(f)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    leftover = int(pidfile.read_text())
    assert dead_soon(leftover), f"{mode} leftover {leftover} outlived up"
    assert time.monotonic() - t0 < 30  # a grandchild holding stdout does not hold up


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
@pytest.mark.parametrize("mode", ["setsid", "daemon"])
def test_detached_processes_go_with_up_whatever_stops_it(tmp_path: Path, mode: str, how: signal.Signals) -> None:
    f, pidfile = topology(tmp_path, mode, stay=True)
    proc = up(f)
    leftover = wait_pid(pidfile)
    assert alive(leftover)
    time.sleep(0.2)
    proc.send_signal(how)
    proc.communicate(timeout=60)
    assert proc.returncode == (-signal.SIGKILL if how == signal.SIGKILL else 0)
    # SIGKILL included: up's death reaches the keeper, which kills the whole tree.
    assert dead_soon(leftover), f"{mode} leftover {leftover} outlived up after {how.name}"


def test_a_graceful_stop_gives_the_whole_tree_its_grace_period(tmp_path: Path) -> None:
    """A shell command: the shell dies at the stop signal, the program it ran cleans up for a while."""
    marker = tmp_path / "cleaned"
    program = tmp_path / "slow_cleanup.py"
    program.write_text(
        "import signal, sys, time\n"
        "def bye(*_):\n"
        "    time.sleep(0.8)\n"
        f"    open({str(marker)!r}, 'w').write('done')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    time.sleep(1)\n"
    )
    f = tmp_path / "t.yaml"
    f.write_text(
        f"""runner: {{stop_timeout: 10s, handle_sigterm: true}}
workers:
  - name: shell
    type: command
    command: "{sys.executable} {program}"
    ready_line: ready
    stop_timeout: 5s
"""
    )
    proc = up(f)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "[shell] ready" in line:
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert marker.read_text() == "done"  # the program's cleanup was not cut by a SIGKILL
    assert "killing it" not in err


def test_restart_always_restarts_for_ever_without_overflow() -> None:
    worker = CommandWorker("w", ["true"], restart="always", backoff_initial=0.5, backoff_max=30, backoff_factor=2)
    delay = None
    for _ in range(5000):  # 2.0 ** 1024 used to overflow at restart 1025
        delay = worker.next_delay(delay)
    assert delay == 30
    huge = CommandWorker("w", ["true"], restart="always", backoff_initial=1e-3, backoff_max=0.01, backoff_factor=1e308)
    delays = []
    d = None
    for _ in range(10):
        d = huge.next_delay(d)
        delays.append(d)
    assert delays[0] == 1e-3 and set(delays[1:]) == {0.01}


def test_a_crashing_command_with_a_huge_factor_keeps_restarting(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    f = tmp_path / "t.yaml"
    f.write_text(
        f"""runner: {{stop_timeout: 5s}}
workers:
  - name: crash
    type: command
    command: ["{sys.executable}", "-c", "open({str(starts)!r}, 'a').write('x'); raise SystemExit(1)"]
    restart: always
    backoff: {{initial: 1ms, max: 10ms, factor: 1e300}}
"""
    )
    proc = up(f)
    deadline = time.monotonic() + 60
    while (not starts.exists() or len(starts.read_text()) < 8) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert len(starts.read_text()) >= 8, err  # past the third restart, where the factor overflowed
    assert "OverflowError" not in err and "Traceback" not in err
    assert proc.returncode == 0
