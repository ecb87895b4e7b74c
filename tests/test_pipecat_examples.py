"""The pipecat-style examples in examples/ run as they are, from their topology files."""

from __future__ import annotations

import os
import uuid

import pytest

from runnerconf.config import build_runner, load_topology

from .conftest import RedisServer, require_redis_package
from .helpers import ROOT, Proc


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[str], list[str]]:
    proc = Proc(["up", *args], {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    code = proc.finish(timeout=60)
    return code, proc.out, proc.err


def test_a_router_delegates_jobs_to_two_helpers_and_a_job_group() -> None:
    code, out, err = run("examples/router.yaml")
    assert code == 0, "\n".join(err)
    assert out == [
        "french: 50% of 'hello world'",
        "french: 'hello world' -> 'bonjour monde'",
        "spanish: 50% of 'good night'",
        "spanish: 'good night' -> 'buenos noches'",
        "french: 50% of 'thank you'",
        "french: 'thank you' -> 'merci '",
        "group french (fr): 'bonne matin'",
        "group spanish (es): 'buenos días'",
    ]
    assert any("runner router-bot done: 3 finished, 0 failed" in line for line in err)


def test_an_agent_hands_the_call_to_another_by_activation() -> None:
    code, out, err = run("examples/handoff.yaml")
    assert code == 0, "\n".join(err)
    assert out == [
        "greeter: support is ready on handoff-bot",
        "caller: hi there",
        "greeter answered (active: True)",
        "caller: I need help with my bill",
        "greeter answered (active: False)",
        "support: taking the call about 'I need help with my bill'",
        "caller: my bill is too high",
        "support answered",
    ]


async def test_topology_keys_reach_the_workers() -> None:
    topology = load_topology(ROOT / "examples" / "handoff.yaml", environ={})
    runner = await build_runner(topology)
    greeter, support = runner.get_worker("greeter"), runner.get_worker("support")
    assert greeter is not None and support is not None
    assert support.active is False and greeter.active is True
    assert greeter._rc.watching == {"support"}
    text = """
runner: {on_failure: end, check_dangling_tasks: false}
workers:
  - {name: a, class: "runnerconf.workers.base_worker:BaseWorker", required: true, check_dangling_tasks: false}
"""
    runner = await build_runner(load_topology(text))
    worker = runner.get_worker("a")
    assert worker is not None and worker.required and not worker.check_dangling_tasks
    assert runner.on_failure == "end" and runner.check_dangling_tasks is False


@pytest.mark.redis
def test_a_worker_watches_another_on_a_second_runner_over_redis_and_asks_it_a_job(redis_server: RedisServer) -> None:
    require_redis_package()
    env = {**os.environ, "REDIS_URL": redis_server.url, "CHANNEL": f"test-{uuid.uuid4().hex[:8]}", "PYTHONUNBUFFERED": "1"}
    back = Proc(["up", "examples/watch-across.yaml", "--runner", "back"], env)
    try:
        back.wait_for("worker store started")
        front = Proc(["up", "examples/watch-across.yaml", "--runner", "front"], env)
        assert front.finish(timeout=30) == 0, "\n".join(front.err)
        assert front.out == ["monitor@front: store is ready on runner back", "monitor: store@back says answer = 42"]
        # The monitor's end() ends every runner of the session: the back runner too.
        assert back.finish(timeout=30) == 0, "\n".join(back.err)
        assert any("runner back: end asked by monitor (looked it up)" in line for line in back.err)
    finally:
        if back.popen.poll() is None:
            back.popen.kill()
            back.finish()
