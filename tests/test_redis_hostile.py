"""The Redis bus under load and from hostile peers, on a real redis-server the tests start."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from runnerconf.bus import BusDataMessage
from runnerconf.bus.wire import encode_frame

from .conftest import RedisServer, require_redis_package
from .helpers import ROOT, Proc, Recorder, eventually

require_redis_package()
import redis  # noqa: E402

from runnerconf.bus.network.redis import RedisBus  # noqa: E402

pytestmark = pytest.mark.redis




async def test_a_sender_in_a_tight_loop_loses_nothing(redis_server: RedisServer) -> None:
    sender = RedisBus(redis_server.url, channel="load", max_buffer=2000, max_batch=256)
    receiver = RedisBus(redis_server.url, channel="load")
    sink = Recorder("sink")
    await receiver.subscribe(sink)
    await sender.start()
    await receiver.start()
    peak = 0
    n = 300_000
    for i in range(n):
        await sender.send(BusDataMessage(source="src", target="sink", payload=i))
        if i % 1000 == 0:
            peak = max(peak, sender.outbox_size)
    await eventually(lambda: len(sink.got) == n, timeout=120)
    assert sink.got == list(range(n))
    assert peak <= 2000  # the sender waited instead of dropping (or growing)
    await sender.stop()
    await receiver.stop()


async def test_hostile_frames_are_skipped_never_taken_for_a_lost_connection(
    make_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # A server that lets 100 MB reach a subscriber (Redis's default pub/sub limit would close the
    # connection itself: see the next test).
    server: RedisServer = make_redis("--client-output-buffer-limit", "pubsub 512mb 256mb 60", "--proto-max-bulk-len", "512mb")
    a = RedisBus(server.url, channel="h")
    b = RedisBus(server.url, channel="h", max_frame_bytes=1 << 20)
    sink = Recorder("sink")
    await b.subscribe(sink)
    await a.start()
    await b.start()
    attacker = redis.asyncio.Redis.from_url(server.url)
    hostile = [
        b"[" * 200_000,
        b'{"v":1,"from":"mallory","messages":' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        b'{"v":1,"from":"mallory","messages":[' + b"1," * 50 + b"1]}",
        b'{"v":1,"from":"big","messages":[]}' + b" " * (100 << 20),
        b"\xff\xfe\x00",
    ]
    with caplog.at_level(logging.WARNING, logger="runnerconf.bus.network.redis"):
        for i in range(200):
            await a.send(BusDataMessage(source="src", target="sink", payload=i))
            if i % 40 == 20:
                await attacker.publish("h", hostile[i // 40])
        await eventually(lambda: len(sink.got) == 200, timeout=60)
    assert sink.got == list(range(200))
    assert "lost the connection" not in caplog.text and "reconnected" not in caplog.text
    assert b.bad_frames >= 5 and b.reconnects == 0
    assert "skipped from big: a frame of 104,857,6" in caplog.text
    # Once a minute per sender (and per bus: both buses read the channel).
    assert caplog.text.count("skipped from mallory") == 2
    await attacker.aclose()
    await a.stop()
    await b.stop()


async def test_a_frame_over_redis_own_pubsub_limit_costs_a_reconnect_not_the_runner(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis closes a subscriber it cannot push 100 MB to (client-output-buffer-limit pubsub,
    32 MB by default): the bus says so and reconnects. README, "Across machines", says it too."""
    b = RedisBus(redis_server.url, channel="h", reconnect_initial=0.05)
    sink = Recorder("sink")
    await b.subscribe(sink)
    await b.start()
    attacker = redis.asyncio.Redis.from_url(redis_server.url)
    with caplog.at_level(logging.WARNING, logger="runnerconf.bus.network.redis"):
        await attacker.publish("h", b" " * (100 << 20))
        await eventually(lambda: b.reconnects == 1, timeout=20)
        await attacker.publish("h", encode_frame("x", [BusDataMessage(source="x", target="sink", payload="after")]))
        await eventually(lambda: sink.got == ["after"], timeout=20)
    assert "lost the connection" in caplog.text
    await attacker.aclose()
    await b.stop()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_flood_of_forged_registries_costs_bounded_time_and_memory_and_down_still_works(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    channel = f"flood-{uuid.uuid4().hex[:8]}"
    topology = tmp_path / "t.yaml"
    topology.write_text(
        f"""bus: {{type: redis, url: "{redis_server.url}", channel: {channel}}}
runners:
  - name: target
    auto_end: false
    workers:
      - {{name: steady, class: "runnerconf.workers.base_worker:BaseWorker"}}
"""
    )
    runner = Proc(["up", str(topology), "--runner", "target"], {**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=ROOT)
    try:
        runner.wait_for("worker steady started")
        time.sleep(0.3)
        before = rss_mb(runner.popen.pid)
        client = __import__("redis").Redis.from_url(redis_server.url)
        big = {"type": "BusWorkerRegistryMessage", "fields": {"source": "forger", "runner": "forger", "workers": [{"name": f"w{i}"} for i in range(200_000)], "full": True}}
        client.publish(channel, json.dumps({"v": 1, "from": "forger", "messages": [big]}).encode())
        for i in range(10_000):
            hello = {"type": "BusWorkerRegistryMessage", "fields": {"source": f"r{i}", "runner": f"r{i}", "hello": True, "full": True, "workers": [{"name": f"x{i}"}]}}
            client.publish(channel, json.dumps({"v": 1, "from": f"forger{i}", "messages": [hello]}).encode())
        client.close()
        runner.wait_for("peers known already", timeout=60)  # it read the flood, and capped it
        time.sleep(1.0)
        grown = rss_mb(runner.popen.pid) - before
        assert grown < 150, f"the flood cost {grown:.0f} MB"
        t0 = time.monotonic()
        down = subprocess.run(
            [sys.executable, "-m", "runnerconf", "down", str(topology), "--timeout", "30"],
            cwd=ROOT, capture_output=True, text=True, timeout=90,
        )
        assert down.returncode == 0, down.stdout + down.stderr
        assert "runner target: stopped" in down.stdout
        assert runner.finish(timeout=30) == 0
        assert time.monotonic() - t0 < 45
    finally:
        if runner.popen.poll() is None:
            runner.popen.kill()
            runner.finish()

