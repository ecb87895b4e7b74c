"""Real signals sent to a real process that runs a WorkerRunner."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "signal_runner.py"


def start(handle_sigterm: bool, end_delay: float, on_signal: str = "end") -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(int(handle_sigterm)), str(end_delay), on_signal],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "READY", (line, proc.stderr.read() if proc.stderr else "")
    return proc


def finish(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_ends_gracefully(sig: signal.Signals) -> None:
    proc = start(handle_sigterm=True, end_delay=0.3)
    proc.send_signal(sig)
    result = finish(proc)
    assert result["hooks"] == [f"end:{sig.name} received", "main-done"]
    assert result["outcome"] == "finished"
    assert result["signals"] == [sig.value]
    assert result["cancelled"] is False


def test_second_signal_cancels_at_once() -> None:
    proc = start(handle_sigterm=True, end_delay=60)
    proc.send_signal(signal.SIGINT)
    # Wait for the graceful stop to be under way before the second signal.
    assert proc.stderr is not None
    for line in proc.stderr:
        if "ending gracefully" in line:
            break
    proc.send_signal(signal.SIGTERM)
    result = finish(proc)
    assert result["hooks"] == ["end:SIGINT received", "cancel:SIGTERM received"]
    assert result["outcome"] == "cancelled"
    assert result["cancelled"] is True


def test_on_signal_cancel_makes_the_first_signal_cancel() -> None:
    proc = start(handle_sigterm=False, end_delay=60, on_signal="cancel")
    proc.send_signal(signal.SIGINT)
    result = finish(proc)
    assert result["hooks"] == ["cancel:SIGINT received"]
    assert result["outcome"] == "cancelled"


def test_sigterm_not_handled_unless_asked() -> None:
    proc = start(handle_sigterm=False, end_delay=0)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGTERM
