"""`runnerconf up` as systemd, Docker, Kubernetes and CI run it: real processes, real signals,
real HTTP requests to the probes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from runnerconf.pipeline.worker import PipelineWorker
from runnerconf.workers.base_worker import BaseWorker
from runnerconf.workers.runner import WorkerRunner

from .conftest import free_port
from .helpers import ROOT, eventually

HOOKS = '''
import asyncio, os
from runnerconf.workers.base_worker import BaseWorker

LOG = os.environ["HOOK_LOG"]


def note(text):
    with open(LOG, "a") as fh:
        fh.write(text + "\\n")


class Slow(BaseWorker):
    """Its on_end takes a long time: a second signal comes while it runs."""

    async def on_start(self):
        note(f"{self.name}:start")
        print("READY", self.name, flush=True)

    async def on_end(self, reason):
        note(f"{self.name}:end")
        await asyncio.sleep(30)

    async def on_cancel(self, reason):
        note(f"{self.name}:cancel:{reason}")

    async def main(self):
        await self.wait_for_stop()
        await asyncio.sleep(30)


class Crash(BaseWorker):
    async def main(self):
        await asyncio.sleep(0.3)
        raise RuntimeError("essential part died")


class Idle(BaseWorker):
    async def on_start(self):
        note(f"{self.name}:start")

    async def on_end(self, reason):
        note(f"{self.name}:end:{reason}")
'''


@pytest.fixture
def hooks(tmp_path: Path) -> Path:
    (tmp_path / "hooks.py").write_text(HOOKS)
    return tmp_path / "hooks.log"


def up(tmp_path: Path, text: str, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
    f = tmp_path / "t.yaml"
    f.write_text(text)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HOOK_LOG": str(log or tmp_path / "hooks.log")}
    return subprocess.Popen(
        [sys.executable, "-m", "runnerconf", "up", str(f), *args],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def wait_ready(proc: subprocess.Popen[str], count: int) -> None:
    assert proc.stdout is not None
    for _ in range(count):
        line = proc.stdout.readline()
        assert line.startswith("READY"), line


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


# -- the stop that always runs its hooks -------------------------------------------------------


def test_a_second_signal_during_a_graceful_end_calls_on_cancel_of_every_worker_once(tmp_path: Path, hooks: Path) -> None:
    proc = up(
        tmp_path,
        """runner: {stop_timeout: 60s}
workers:
  - {name: parent, class: "hooks:Slow"}
  - {name: child, class: "hooks:Slow", parent: parent}
""",
    )
    wait_ready(proc, 2)
    proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 10
    while len([x for x in lines(hooks) if x.endswith(":end")]) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    log = lines(hooks)
    for name in ("parent", "child"):
        cancels = [x for x in log if x.startswith(f"{name}:cancel:")]
        assert len(cancels) == 1, log  # once each, though their on_end was still running
    assert "exiting with code 130: forced stop by a second signal (SIGINT)" in err


async def test_a_cancel_while_on_end_runs_calls_on_cancel() -> None:
    log: list[str] = []

    class Slow(BaseWorker):
        async def on_end(self, reason: str | None) -> None:
            log.append("end")
            await asyncio.sleep(30)

        async def on_cancel(self, reason: str | None) -> None:
            log.append(f"cancel:{reason}")

    for how in ("cancel", "stop_timeout"):
        log.clear()
        runner = WorkerRunner(handle_sigint=False, stop_timeout=0.2 if how == "stop_timeout" else 60)
        await runner.add_workers(Slow("slow"))
        task = asyncio.create_task(runner.run())
        await eventually(lambda: runner.running and runner.get_worker("slow") is not None and runner.get_worker("slow").ready)  # type: ignore[union-attr]
        await runner.end("bye")
        await eventually(lambda: log == ["end"])
        if how == "cancel":
            await runner.cancel("now")
        await asyncio.wait_for(task, 10)
        assert log == ["end", "cancel:now" if how == "cancel" else "cancel:stop_timeout expired"], how
        assert runner.results["slow"].outcome == "cancelled"


def test_sigterm_stops_gracefully_by_default_as_docker_stop_sends_it(tmp_path: Path, hooks: Path) -> None:
    proc = up(tmp_path, 'workers:\n  - {name: idle, class: "hooks:Idle"}\n  - {name: slow, class: "hooks:Slow"}\n', "--set", "runner.stop_timeout=0.5")
    wait_ready(proc, 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    # A graceful stop: on_end ran; slow overran its grace period and was cancelled (not killed).
    assert proc.returncode == 0, err
    assert "idle:end:SIGTERM received" in lines(hooks)
    assert any(x.startswith("slow:cancel:") for x in lines(hooks))


@pytest.mark.parametrize("base", [BaseWorker, PipelineWorker])
async def test_a_subclass_may_use_any_attribute_name(base: type[BaseWorker]) -> None:
    log: list[str] = []

    class Mine(base):  # type: ignore[valid-type,misc]
        def __init__(self, name: str) -> None:
            if base is PipelineWorker:
                super().__init__(name, [lambda f: f])
            else:
                super().__init__(name)
            self._stop = "mine"
            self._task = "mine"
            self._queue = ["mine"]
            self._state = {"mine": True}
            self._children = ["mine"]
            self._name = "not my name"
            self._parent = "nobody"
            self._runner = None
            self._bus = None

        async def on_start(self) -> None:
            self._stop = asyncio.Event()  # the name users pick all the time
            log.append("start")

        async def on_end(self, reason: str | None) -> None:
            log.append("end")
            if base is PipelineWorker:
                await super().on_end(reason)

        async def on_cancel(self, reason: str | None) -> None:
            log.append("cancel")

    for how in ("end", "cancel"):
        log.clear()
        runner = WorkerRunner(handle_sigint=False)
        worker = Mine("mine")
        await runner.add_workers(worker)
        task = asyncio.create_task(runner.run(auto_end=False))
        await eventually(lambda worker=worker: worker.ready)  # type: ignore[misc]
        await (runner.end("bye") if how == "end" else runner.cancel("now"))
        await asyncio.wait_for(task, 5)
        assert log == ["start", how], (base, how, log)
        assert runner.results["mine"].outcome == ("finished" if how == "end" else "cancelled")
        assert worker.name == "mine" and worker._state == {"mine": True}


# -- failure policies, --exit-code-from, selected workers --------------------------------------


def test_a_failing_required_worker_ends_the_runner_with_exit_1(tmp_path: Path, hooks: Path) -> None:
    proc = up(
        tmp_path,
        """workers:
  - {name: idle, class: "hooks:Idle"}
  - {name: essential, class: "hooks:Crash", required: true}
""",
    )
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert "idle:end:required worker 'essential' failed" in lines(hooks)
    assert "exiting with code 1: worker 'essential' failed: RuntimeError: essential part died" in err


@pytest.mark.parametrize(("policy", "outcome"), [("end", "idle:end:worker 'crash' failed"), ("continue", None)])
def test_on_failure_end_ends_continue_goes_on(tmp_path: Path, hooks: Path, policy: str, outcome: str | None) -> None:
    proc = up(
        tmp_path,
        f"""runner: {{on_failure: {policy}}}
workers:
  - {{name: idle, class: "hooks:Idle"}}
  - {{name: crash, class: "hooks:Crash"}}
""",
    )
    if outcome is None:
        time.sleep(1.5)
        assert proc.poll() is None  # the others go on
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    if outcome is not None:
        assert outcome in lines(hooks)


@pytest.mark.parametrize("code", [0, 7])
def test_exit_code_from_passes_the_worker_exit_code_through(tmp_path: Path, hooks: Path, code: int) -> None:
    proc = up(
        tmp_path,
        f"""workers:
  - {{name: idle, class: "hooks:Idle"}}
  - name: tests
    type: command
    command: ["{sys.executable}", "-c", "import time; time.sleep(0.3); raise SystemExit({code})"]
""",
        "--exit-code-from", "tests",
    )
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "idle:end:--exit-code-from tests: it finished" in lines(hooks)
    assert f"--exit-code-from tests: exit status {code}" in err


def test_up_starts_only_the_named_workers_and_what_they_need(tmp_path: Path, hooks: Path) -> None:
    text = """runner: {auto_end: true}
workers:
  - {name: db, class: "hooks:Idle"}
  - {name: api, class: "hooks:Idle", depends_on: [db]}
  - {name: api-child, class: "hooks:Idle", parent: api}
  - {name: worker, class: "hooks:Idle"}
"""
    proc = up(tmp_path, text, "api", "--set", "runner.auto_end=false")
    deadline = time.monotonic() + 15
    while len([x for x in lines(hooks) if x.endswith(":start")]) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    started = sorted(x.split(":")[0] for x in lines(hooks) if x.endswith(":start"))
    assert started == ["api", "api-child", "db"]
    bad = up(tmp_path, text, "nope")
    _, err = bad.communicate(timeout=30)
    assert bad.returncode == 2 and "no worker named 'nope'" in err


# -- health, readiness, metrics --------------------------------------------------------------


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_probes_and_metrics_over_real_http(tmp_path: Path, hooks: Path) -> None:
    pytest.importorskip("prometheus_client", reason="the http extra (prometheus-client) is not installed")
    from prometheus_client.parser import text_string_to_metric_families

    port = free_port()
    proc = up(
        tmp_path,
        f"""runner: {{name: bot, http: "127.0.0.1:{port}", stop_timeout: 5s}}
workers:
  - {{name: idle, class: "hooks:Idle"}}
  - name: late
    type: command
    command: ["{sys.executable}", "-c", "import time; time.sleep(1.0); print('up', flush=True); time.sleep(60)"]
    ready_line: up
""",
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            status, body = get(f"{base}/healthz")
            break
        except OSError:
            time.sleep(0.05)
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = get(f"{base}/readyz")
    assert status == 503 and "late" in json.loads(body)["not_ready"]
    while get(f"{base}/readyz")[0] != 200:
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.05)
    status, text = get(f"{base}/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    workers = {s.labels["state"]: s.value for s in families["runnerconf_workers"].samples if s.labels["runner"] == "bot"}
    assert workers["running"] == 2
    assert any(s.value >= 1 for s in families["runnerconf_bus_messages_sent"].samples)
    assert {s.labels["worker"] for s in families["runnerconf_worker_restarts"].samples} == {"late"}
    assert get(f"{base}/nope")[0] == 404
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_a_command_whose_health_check_fails_is_restarted(tmp_path: Path, hooks: Path) -> None:
    flag = tmp_path / "healthy"
    flag.write_text("yes")
    proc = up(
        tmp_path,
        f"""workers:
  - name: svc
    type: command
    command: ["{sys.executable}", "-c", "import time; print('started', flush=True); time.sleep(60)"]
    restart: on-failure
    backoff: {{initial: 100ms}}
    healthcheck: {{exec: [test, -f, "{flag}"], interval: 100ms, retries: 2}}
  - {{name: after, class: "hooks:Idle", depends_on: [{{name: svc, condition: healthy}}]}}
""",
        "--log-format", "json",
    )
    assert proc.stderr is not None
    events: list[dict[str, object]] = []
    for line in proc.stderr:
        record = json.loads(line)
        events.append(record)
        if record.get("event") == "command_healthy" and not any(e.get("event") == "command_restart" for e in events):
            flag.unlink()  # now it fails its health check
        if record.get("event") == "command_restart":
            flag.write_text("yes")
            break
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    restart = next(e for e in events if e.get("event") == "command_restart")
    assert restart["worker"] == "svc" and restart["runner"]
    assert "unhealthy" in str(restart["message"])
    assert any(e.get("event") == "worker_started" and e.get("worker") == "after" for e in events)


def test_completed_and_healthy_dependencies(tmp_path: Path, hooks: Path) -> None:
    proc = up(
        tmp_path,
        f"""runner: {{auto_end: true}}
workers:
  - name: migrate
    type: command
    command: ["{sys.executable}", "-c", "import time; time.sleep(0.5)"]
  - {{name: app, class: "hooks:Idle", depends_on: [{{name: migrate, condition: completed}}]}}
  - name: broken
    type: command
    command: ["{sys.executable}", "-c", "raise SystemExit(2)"]
  - {{name: never, class: "hooks:Idle", depends_on: [{{name: broken, condition: completed}}]}}
""",
        "--set", "runner.auto_end=false", "--log-format", "json",
    )
    deadline = time.monotonic() + 15
    while "app:start" not in lines(hooks) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    records = [json.loads(line) for line in err.splitlines()]
    assert "app:start" in lines(hooks) and "never:start" not in lines(hooks)
    failed = {r["worker"]: r for r in records if r.get("event") == "worker_stopped" and r.get("outcome") == "failed"}
    assert "broken" in failed and "never" in failed
    assert "dependency 'broken' failed, so it did not complete" in next(
        r["message"] for r in records if r.get("worker") == "never" and r.get("event") == "worker_stopped"
    )


def test_json_logs_carry_runner_worker_event_and_stream(tmp_path: Path) -> None:
    proc = up(
        tmp_path,
        f"""runner: {{name: r1}}
workers:
  - name: talk
    type: command
    command: ["{sys.executable}", "-c", "import sys; print('out'); print('err', file=sys.stderr); raise SystemExit(3)"]
""",
        "--log-format", "json",
    )
    _, err = proc.communicate(timeout=30)
    records = [json.loads(line) for line in err.splitlines()]
    outputs = [r for r in records if r.get("event") == "command_output"]
    assert {(r["runner"], r["worker"], r["stream"]) for r in outputs} == {("r1", "talk", "stdout"), ("r1", "talk", "stderr")}
    assert all(r.get("runner") == "r1" for r in records if str(r.get("event", "")).startswith(("command_", "worker_")))
    assert records[-2]["event"] == "runner_done" and records[-2]["failed"] == 1
    assert records[-1] == {**records[-1], "event": "up_exit", "code": 1}
    assert "worker 'talk' failed: CommandError: process exited with code 3" in records[-1]["reason"]
