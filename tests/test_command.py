"""CommandWorker with real processes: stop signals, grace, restarts, readiness, clean-up."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from runnerconf.workers.base_worker import BaseWorker, DependencyError
from runnerconf.workers.command import CommandError, CommandWorker
from runnerconf.workers.runner import WorkerRunner

from .helpers import eventually, group_alive


def script(tmp_path: Path, name: str, body: str) -> list[str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return [sys.executable, "-u", str(path)]


async def run_until(runner: WorkerRunner, condition, *, end: str = "end") -> None:  # type: ignore[no-untyped-def]
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(condition, timeout=10)
    await (runner.end("test over") if end == "end" else runner.cancel("test over"))
    await asyncio.wait_for(task, 15)


async def test_graceful_stop_is_honoured_by_a_script_that_traps_sigterm(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    cmd = script(
        tmp_path,
        "trap.py",
        f"""
        import signal, sys, time
        def bye(signum, frame):
            time.sleep(0.2)  # a shutdown that takes a while
            open({str(marker)!r}, "w").write(f"got {{signal.Signals(signum).name}}")
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
        print("listening", flush=True)
        while True:
            time.sleep(1)
        """,
    )
    runner = WorkerRunner(handle_sigint=False)
    w = CommandWorker("trap", cmd, ready_line="listening", stop_timeout=5)
    await runner.add_workers(w)
    await run_until(runner, lambda: w.ready)
    assert marker.read_text() == "got SIGTERM"
    assert w.returncode == 0
    assert runner.results["trap"].outcome == "finished"


async def test_a_script_that_ignores_the_stop_signal_is_killed_after_the_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cmd = script(
        tmp_path,
        "deaf.py",
        """
        import signal, time
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("up", flush=True)
        time.sleep(60)
        """,
    )
    runner = WorkerRunner(handle_sigint=False)
    w = CommandWorker("deaf", cmd, stop_signal="SIGINT", stop_timeout=0.3, ready_line="up")
    await runner.add_workers(w)
    with caplog.at_level(logging.INFO, logger="runnerconf.workers.command"):
        await run_until(runner, lambda: w.ready)
    assert w.returncode == -signal.SIGKILL
    assert "sending SIGINT to process group" in caplog.text
    assert "still running 0.3s after SIGINT; killing it" in caplog.text
    assert w.pid is not None and not group_alive(w.pid)


async def test_cancel_kills_at_once(tmp_path: Path) -> None:
    cmd = script(tmp_path, "deaf.py", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(60)\n")
    runner = WorkerRunner(handle_sigint=False)
    w = CommandWorker("deaf", cmd, stop_timeout=60, ready_line="up")
    await runner.add_workers(w)
    await run_until(runner, lambda: w.ready, end="cancel")
    assert w.returncode == -signal.SIGKILL
    assert runner.results["deaf"].outcome == "cancelled"


async def test_restarts_back_off_and_stop_after_max_restarts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    starts = tmp_path / "starts"
    cmd = script(tmp_path, "fail.py", f"open({str(starts)!r}, 'a').write('start\\n')\nraise SystemExit(3)\n")
    runner = WorkerRunner(handle_sigint=False)
    errors: list[str] = []
    runner.add_event_handler("on_error", lambda r, w, e: errors.append(f"{w.name}: {e}"))
    w = CommandWorker(
        "flaky", cmd, restart="on-failure", max_restarts=3, backoff_initial=0.02, backoff_factor=2, backoff_max=0.05
    )
    await runner.add_workers(w)
    with caplog.at_level(logging.WARNING, logger="runnerconf.workers.command"):
        await asyncio.wait_for(runner.run(), 15)
    assert starts.read_text().splitlines() == ["start"] * 4
    assert w.starts == 4
    restarts = [r.getMessage() for r in caplog.records if "; restart " in r.getMessage()]
    assert restarts == [
        "worker flaky: process exited with code 3; restart 1/3 in 0.02s",
        "worker flaky: process exited with code 3; restart 2/3 in 0.04s",
        "worker flaky: process exited with code 3; restart 3/3 in 0.05s",
    ]
    assert errors == ["flaky: process exited with code 3; giving up after 3 restarts"]
    assert runner.results["flaky"].outcome == "failed"


async def test_restart_policies_no_on_failure_always(tmp_path: Path) -> None:
    ok = script(tmp_path, "ok.py", "print('fine')\n")
    bad = script(tmp_path, "bad.py", "raise SystemExit(2)\n")
    runner = WorkerRunner(handle_sigint=False)
    finished = CommandWorker("clean-exit", ok, restart="on-failure", backoff_initial=0.01)
    failed = CommandWorker("no-restart", bad)
    always = CommandWorker("always", ok, restart="always", max_restarts=2, backoff_initial=0.01)
    await runner.add_workers(finished, failed, always)
    await asyncio.wait_for(runner.run(), 15)
    assert (finished.starts, runner.results["clean-exit"].outcome) == (1, "finished")
    assert (failed.starts, runner.results["no-restart"].outcome) == (1, "failed")
    assert str(runner.results["no-restart"].error) == "process exited with code 2"
    assert always.starts == 3  # restarted after clean exits too, until max_restarts


async def test_depends_on_waits_for_the_ready_line(tmp_path: Path) -> None:
    order = tmp_path / "order"
    relay = script(
        tmp_path,
        "relay.py",
        f"""
        import time
        print("warming up", flush=True)
        time.sleep(0.3)
        open({str(order)!r}, "a").write("relay ready\\n")
        print("listening on 7861", flush=True)
        time.sleep(60)
        """,
    )

    class Bot(BaseWorker):
        async def on_start(self) -> None:
            with open(order, "a") as fh:
                fh.write("bot started\n")

        async def main(self) -> None:
            return

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(Bot("bot", depends_on=["relay"]), CommandWorker("relay", relay, ready_line=r"listening on \d+"))
    await run_until(runner, lambda: "bot" in runner.results)
    assert order.read_text().splitlines() == ["relay ready", "bot started"]


async def test_a_dependency_that_fails_before_ready_fails_its_dependents(tmp_path: Path) -> None:
    runner = WorkerRunner(handle_sigint=False)
    dep = CommandWorker("dep", script(tmp_path, "x.py", "raise SystemExit(1)\n"), ready_line="never")
    waiting = BaseWorker("waiting", depends_on=["dep"])
    await runner.add_workers(waiting, dep)
    await asyncio.wait_for(runner.run(), 10)
    assert runner.results["waiting"].outcome == "failed"
    error = runner.results["waiting"].error
    assert isinstance(error, DependencyError) and str(error) == "dependency 'dep' failed without becoming ready"


async def test_ready_timeout(tmp_path: Path) -> None:
    runner = WorkerRunner(handle_sigint=False)
    w = CommandWorker("slow", script(tmp_path, "s.py", "import time\ntime.sleep(60)\n"), ready_line="ok", ready_timeout=0.2)
    await runner.add_workers(w)
    await asyncio.wait_for(runner.run(), 10)
    assert str(runner.results["slow"].error) == "not ready within 0.2s (no output line matched)"
    assert w.pid is not None and not group_alive(w.pid)


async def test_no_process_of_the_group_survives(tmp_path: Path) -> None:
    runner = WorkerRunner(handle_sigint=False)
    # The shell leaves a grandchild behind; it shares the worker's process group.
    w = CommandWorker("family", "sleep 60 & echo started; sleep 60")
    await runner.add_workers(w)
    await run_until(runner, lambda: w.ready and w.pid is not None)
    assert w.pid is not None and not group_alive(w.pid)

    runner = WorkerRunner(handle_sigint=False)
    w = CommandWorker("leaves-a-child", "sleep 60 & exit 0")
    await runner.add_workers(w)
    await asyncio.wait_for(runner.run(), 10)  # the main process exits at once: its child goes too
    assert runner.results["leaves-a-child"].outcome == "finished"
    assert w.pid is not None and not group_alive(w.pid)


async def test_every_output_line_is_logged_with_the_worker_name(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cmd = script(
        tmp_path,
        "chatty.py",
        """
        import sys
        for i in range(2000):
            print(f"out {i}")
        print("x" * 200000)
        for i in range(50):
            print(f"err {i}", file=sys.stderr)
        """,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(CommandWorker("chatty", cmd))
    with caplog.at_level(logging.INFO, logger="runnerconf.workers.command"):
        await asyncio.wait_for(runner.run(), 15)
    out = [r for r in caplog.records if getattr(r, "stream", None) == "stdout"]
    err = [r for r in caplog.records if getattr(r, "stream", None) == "stderr"]
    assert [r.getMessage() for r in out[:2000]] == [f"[chatty] out {i}" for i in range(2000)]
    assert len(out) == 2001 and len(out[-1].getMessage()) == len("[chatty] ") + 200000
    assert [r.getMessage() for r in err] == [f"[chatty] err {i}" for i in range(50)]
    assert {r.levelno for r in out} == {logging.INFO} and {r.levelno for r in err} == {logging.WARNING}
    assert all(getattr(r, "worker", None) == "chatty" for r in out + err)


async def test_a_command_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    not_exec = tmp_path / "script.sh"
    not_exec.write_text("echo hi\n")
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(
        CommandWorker("missing", ["definitely-not-a-program-x"]),
        CommandWorker("not-executable", [str(not_exec)]),
        CommandWorker("bad-cwd", ["true"], cwd=str(tmp_path / "nowhere")),
    )
    await asyncio.wait_for(runner.run(), 10)
    errors = {n: str(r.error) for n, r in runner.results.items()}
    assert errors["missing"] == "cannot start 'definitely-not-a-program-x': No such file or directory"
    assert errors["not-executable"] == f"cannot start {str(not_exec)!r}: Permission denied"
    assert errors["bad-cwd"].startswith("cannot start 'true' in ")
    assert all(isinstance(r.error, CommandError) for r in runner.results.values())


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="empty command"):
        CommandWorker("x", [])
    with pytest.raises(ValueError, match="restart"):
        CommandWorker("x", ["true"], restart="sometimes")  # type: ignore[arg-type]
