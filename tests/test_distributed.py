"""configs/distributed.yaml as users run it: runner processes on a real Redis, `down`, and the
same topology on the in-process bus."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import RedisServer, free_port, require_redis_package
from .helpers import Proc

require_redis_package()
pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGY = "configs/distributed.yaml"


@pytest.fixture
def env(redis_server: RedisServer) -> Iterator[dict[str, str]]:
    yield {**os.environ, "REDIS_URL": redis_server.url, "CHANNEL": f"test-{uuid.uuid4().hex[:8]}", "PYTHONUNBUFFERED": "1"}


PROCS: list[Proc] = []


@pytest.fixture(autouse=True)
def reap() -> Iterator[None]:
    yield
    while PROCS:  # a failed test must not leave runner processes behind
        proc = PROCS.pop()
        if proc.popen.poll() is None:
            proc.popen.kill()
        proc.finish()


def up(env: dict[str, str], *args: str) -> Proc:
    proc = Proc(["up", TOPOLOGY, *args], env)
    PROCS.append(proc)
    return proc


def down(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runnerconf", "down", TOPOLOGY, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_two_runner_processes_talk_wait_for_each_other_and_end_together_through_down(env: dict[str, str]) -> None:
    edge1 = up(env, "--runner", "edge-1")
    # The ticker waits for the counter, which runs on the other runner, not started yet.
    edge1.wait_for("worker ticker waits for counter")
    time.sleep(0.5)
    assert not any("acknowledged" in line for line in edge1.out)
    edge2 = up(env, "--runner", "edge-2")
    edge2.wait_for("counter@edge-2: tick 2 from ticker@edge-1", stream="out")
    edge1.wait_for("ticker: counter acknowledged 2", stream="out")
    result = down(env)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == ["runner edge-1: stopped", "runner edge-2: stopped"]
    assert edge1.finish() == 0 and edge2.finish() == 0
    assert any("end asked by runnerconf-down-" in line for line in edge1.err)
    assert edge1.err[-2].endswith("runner edge-1 done: 1 finished, 0 failed, 0 cancelled")
    assert edge2.err[-2].endswith("runner edge-2 done: 1 finished, 0 failed, 0 cancelled")


def test_down_cancel_and_down_of_one_runner(env: dict[str, str]) -> None:
    edge1, edge2 = up(env, "--runner", "edge-1"), up(env, "--runner", "edge-2")
    edge1.wait_for("acknowledged 1", stream="out")
    result = down(env, "--runner", "edge-2", "--cancel")
    assert result.returncode == 0 and result.stdout == "runner edge-2: stopped\n"
    assert edge2.finish() == 0
    assert edge2.err[-2].endswith("runner edge-2 done: 0 finished, 0 failed, 1 cancelled")
    assert edge1.popen.poll() is None  # the other runner goes on
    edge1.wait_for("peer runner edge-2 left")
    assert down(env).returncode == 0
    assert edge1.finish() == 0


def test_down_with_nobody_running_and_on_an_in_process_bus(env: dict[str, str], tmp_path: Path) -> None:
    result = down(env)
    assert result.returncode == 0 and result.stdout == "no runner is running on this topology's bus\n"
    result = down(env, "--set", "bus={type: async_queue}")
    assert result.returncode == 2 and "stop it with a signal" in result.stderr


def test_redis_restarted_under_running_runners(env: dict[str, str], redis_server: RedisServer) -> None:
    edge1, edge2 = up(env, "--runner", "edge-1"), up(env, "--runner", "edge-2")
    edge1.wait_for("acknowledged 2", stream="out")
    redis_server.stop()
    edge1.wait_for("lost the connection")
    edge2.wait_for("lost the connection")
    time.sleep(0.5)
    redis_server.start()
    edge1.wait_for("reconnected")
    edge2.wait_for("reconnected")
    acked = len([line for line in edge1.out if "acknowledged" in line])
    edge1.wait_for(f"acknowledged {acked + 2}", stream="out")  # ticks flow again, both ways
    assert edge1.popen.poll() is None and edge2.popen.poll() is None
    assert down(env).returncode == 0
    assert edge1.finish() == 0 and edge2.finish() == 0


def test_garbage_on_the_channel_does_not_crash_a_runner(env: dict[str, str], redis_server: RedisServer) -> None:
    import redis

    edge1, edge2 = up(env, "--runner", "edge-1"), up(env, "--runner", "edge-2")
    edge1.wait_for("acknowledged 1", stream="out")
    client = redis.Redis.from_url(redis_server.url)
    client.publish(env["CHANNEL"], b"\x00 not a frame")
    client.publish(env["CHANNEL"], b'{"v":1,"from":"mallory","messages":[{"type":"subprocess.Popen","fields":{"source":"x"}}]}')
    client.close()
    edge1.wait_for("unknown message type 'subprocess.Popen'")
    edge2.wait_for("a frame that is not runnerconf's")
    count = len([line for line in edge1.out if "acknowledged" in line])
    edge1.wait_for(f"acknowledged {count + 1}", stream="out")
    assert down(env).returncode == 0
    assert edge1.finish() == 0 and edge2.finish() == 0


def test_the_same_topology_on_the_in_process_bus_behaves_the_same(env: dict[str, str]) -> None:
    both = up(env, "--set", "bus={type: async_queue}")
    both.wait_for("counter@edge-2: tick 2 from ticker@edge-1", stream="out")
    both.wait_for("ticker: counter acknowledged 2", stream="out")
    both.popen.send_signal(signal.SIGINT)
    assert both.finish() == 0
    assert any(line.endswith("runner edge-1 done: 1 finished, 0 failed, 0 cancelled") for line in both.err)
    assert any(line.endswith("runner edge-2 done: 1 finished, 0 failed, 0 cancelled") for line in both.err)


def test_an_unreachable_redis_is_a_start_up_failure(env: dict[str, str]) -> None:
    env = {**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    proc = up(env, "--runner", "edge-1", "--set", "bus.connect_timeout=1s")
    assert proc.finish() == 3
    assert any("start-up failed: cannot reach Redis at redis://127.0.0.1:" in line for line in proc.err)
    result = down(env, "--set", "bus.connect_timeout=1s")
    assert result.returncode == 3 and "cannot reach Redis" in result.stderr
