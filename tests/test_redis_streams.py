"""``delivery: stream``: a Redis Streams bus that loses nothing, against a real redis-server."""

from __future__ import annotations

import asyncio
import logging
import signal
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from runnerconf.bus import BusDataMessage

from .conftest import RedisServer, require_redis_package
from .helpers import Proc, Recorder, eventually

require_redis_package()
import redis.asyncio as aioredis  # noqa: E402

from runnerconf.bus.redis import RedisBus  # noqa: E402

pytestmark = pytest.mark.redis




async def bus(server: RedisServer, group: str | None, recorder: Recorder | None = None, **kwargs: Any) -> RedisBus:
    b = RedisBus(server.url, channel="s", delivery="stream", group=group, **kwargs)
    if recorder is not None:
        await b.subscribe(recorder)
    await b.start()
    return b


async def test_messages_cross_in_order_and_are_acknowledged_once_handled(redis_server: RedisServer) -> None:
    rb = Recorder("rb", delay=0.001)
    a, b = await bus(redis_server, "a"), await bus(redis_server, "b", rb)
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        for i in range(2000):
            await a.send(BusDataMessage(source="x", target="rb", payload=i))
        await eventually(lambda: len(rb.got) == 2000, timeout=30)
        assert rb.got == list(range(2000))
        await eventually_async(lambda: _pending(client, "b"), 0)
        assert b.duplicates == 0
    finally:
        await a.stop()
        await b.stop()
        await client.aclose()


async def _pending(client: Any, group: str) -> int:
    return int((await client.xpending("s", group))["pending"])


async def eventually_async(probe: Any, expected: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while (value := await probe()) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"{value!r} != {expected!r}")
        await asyncio.sleep(0.02)


async def test_a_runner_away_reads_what_was_sent_meanwhile(redis_server: RedisServer) -> None:
    rb = Recorder("rb")
    a, b = await bus(redis_server, "a"), await bus(redis_server, "b", rb)
    await a.send(BusDataMessage(source="x", target="rb", payload="before"))
    await eventually(lambda: rb.got == ["before"])
    await b.stop()
    for i in range(300):
        await a.send(BusDataMessage(source="x", target="rb", payload=i))
    await asyncio.sleep(0.2)
    again = Recorder("rb")
    b = await bus(redis_server, "b", again)
    try:
        await eventually(lambda: len(again.got) == 300, timeout=20)
        assert again.got == list(range(300))
    finally:
        await a.stop()
        await b.stop()


async def test_what_was_not_handled_before_a_stop_is_delivered_again(redis_server: RedisServer) -> None:
    slow = Recorder("rb", delay=0.05)
    a, b = await bus(redis_server, "a"), await bus(redis_server, "b", slow)
    for i in range(40):
        await a.send(BusDataMessage(source="x", target="rb", payload=i))
    await eventually(lambda: len(slow.got) >= 3)
    await b.stop()  # drops what is queued here, unacknowledged
    handled = list(slow.got)
    assert len(handled) < 40
    again = Recorder("rb")
    b = await bus(redis_server, "b", again)
    try:
        await eventually(lambda: len(handled) + len(again.got) >= 40, timeout=20)
        await asyncio.sleep(0.2)
        # At least once on the wire: what was handled but not yet acknowledged may come again;
        # nothing is missing, and the rest comes in order.
        assert set(handled) | set(again.got) == set(range(40))
        assert again.got == sorted(again.got) and again.got[-1] == 39
    finally:
        await a.stop()
        await b.stop()


async def test_what_a_worker_that_stopped_did_not_handle_waits_for_the_next_start(redis_server: RedisServer) -> None:
    slow = Recorder("rb", delay=0.05)
    a, b = await bus(redis_server, "a", max_batch=1), await bus(redis_server, "b", slow)
    for i in range(10):
        await a.send(BusDataMessage(source="x", target="rb", payload=i))
    await eventually(lambda: len(slow.got) >= 2)
    b.remove_subscriber("rb")  # the worker ends (a runner stopping): what was queued is not handled
    for i in range(10, 15):  # and what comes for it now has nobody here
        await a.send(BusDataMessage(source="x", target="rb", payload=i))
    await eventually_async(lambda: _outbox(a), 0)
    await asyncio.sleep(0.3)
    await b.stop()
    handled = list(slow.got)
    again = Recorder("rb")
    b = await bus(redis_server, "b", again)
    try:
        await eventually(lambda: len(handled) + len(again.got) >= 15, timeout=20)
        assert sorted(set(handled) | set(again.got)) == list(range(15))
        assert again.got == sorted(again.got) and again.got[-1] == 14
    finally:
        await a.stop()
        await b.stop()


async def test_a_frame_read_twice_is_handed_out_once(redis_server: RedisServer) -> None:
    rb = Recorder("rb")
    b = await bus(redis_server, "b", rb)
    client = aioredis.Redis.from_url(redis_server.url)
    sender = RedisBus(redis_server.url, channel="s")  # only to make a frame
    frame = sender.serializer.frames("peer", [sender.serializer.encode(BusDataMessage(source="x", target="rb", payload="once"))])[0]
    try:
        for _ in range(3):  # a publisher retrying after a lost reply adds the same tagged frame again
            await client.xadd("s", {b"f": frame, b"n": b"peer:1"})
        await eventually(lambda: rb.got == ["once"])
        await asyncio.sleep(0.2)
        assert rb.got == ["once"] and b.duplicates == 2
        await eventually_async(lambda: _pending(client, "b"), 0)
    finally:
        await b.stop()
        await client.aclose()


async def test_the_stream_is_bounded_and_a_runner_away_too_long_is_told(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    rb = Recorder("rb")
    a = await bus(redis_server, "a", max_len=100, max_batch=1)
    b = await bus(redis_server, "b", rb)
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        await a.send(BusDataMessage(source="x", target="rb", payload="first"))
        await eventually(lambda: rb.got == ["first"])
        await b.stop()
        for i in range(3000):
            await a.send(BusDataMessage(source="x", target="rb", payload=i))
        await eventually_async(lambda: _outbox(a), 0)
        length = await client.xlen("s")
        assert length < 100 + 200  # MAXLEN ~: whole nodes of about a hundred entries
        caplog.set_level(logging.WARNING, logger="runnerconf.bus.network.redis")
        again = Recorder("rb")
        b = await bus(redis_server, "b", again)
        await eventually(lambda: len(again.got) == length, timeout=20)
        assert again.got == list(range(3000 - length, 3000))
        missed = [r.getMessage() for r in caplog.records if "missed" in r.getMessage()]
        assert missed == [f"redis bus s: away longer than the stream keeps (max_len / retention): {3000 - length:,} message frame(s) missed"]
    finally:
        await a.stop()
        await b.stop()
        await client.aclose()


async def _outbox(b: RedisBus) -> int:
    return b.outbox_size


async def test_retention_trims_by_age(redis_server: RedisServer) -> None:
    a = await bus(redis_server, "a", retention=0.5, max_batch=1)
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        for i in range(50):
            await a.send(BusDataMessage(source="x", target="nobody", payload=i))
        await eventually_async(lambda: _outbox(a), 0)
        assert await client.xlen("s") == 50
        await asyncio.sleep(1.2)
        await a.send(BusDataMessage(source="x", target="nobody", payload="late"))
        await eventually_async(lambda: client.xlen("s"), 1)
    finally:
        await a.stop()
        await client.aclose()


async def test_a_short_lived_bus_leaves_no_group_behind(redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    keeper = await bus(redis_server, "keeper")
    passing = await bus(redis_server, None)
    try:
        names = {g["name"] for g in await client.xinfo_groups("s")}
        assert b"keeper" in names and len(names) == 2
        await passing.stop()
        assert {g["name"] for g in await client.xinfo_groups("s")} == {b"keeper"}
    finally:
        await keeper.stop()
        await client.aclose()


# -- two `up` processes -----------------------------------------------------------------------

SENDER = '''\
"""Workers of the stream tests: a sender of numbered messages and a receiver that counts them."""

import asyncio
import sys

from runnerconf.bus import BusDataMessage
from runnerconf.workers.base_worker import BaseWorker


class Sender(BaseWorker):
    def __init__(self, name=None, *, count, pause=0.0):
        super().__init__(name)
        self.count, self.pause = count, pause

    async def main(self):
        for i in range(self.count):
            await self.send("rx", i)
            if self.pause:
                await asyncio.sleep(self.pause)
            if i % 500 == 0:
                print(f"sent {i}", flush=True)
        await self.send("rx", "end")
        print("sent all", flush=True)
        # Stay until the receiver has it all: what is still in the outbox goes out meanwhile.
        await self.wait_for_stop()


class Receiver(BaseWorker):
    def __init__(self, name=None, *, out):
        super().__init__(name)
        self.out = open(out, "a", buffering=1)

    async def on_bus_message(self, message):
        await super().on_bus_message(message)
        if type(message) is BusDataMessage:
            self.out.write(f"{message.payload}\\n")
            if message.payload == "end":
                await self.end(reason="all received")
'''


def _topology(tmp_path: Path, server: RedisServer, count: int, pause: float) -> Path:
    (tmp_path / "stream_workers.py").write_text(SENDER)
    f = tmp_path / "topology.yaml"
    f.write_text(
        textwrap.dedent(
            f"""\
            bus: {{type: redis, url: "{server.url}", channel: tx-rx, delivery: stream, reconnect: {{initial: 50ms, max: 500ms}}}}
            runners:
              - name: sending
                workers: [{{name: tx, class: stream_workers:Sender, params: {{count: {count}, pause: {pause}}}}}]
              - name: receiving
                workers: [{{name: rx, class: stream_workers:Receiver, params: {{out: "{tmp_path / 'received.txt'}"}}}}]
            """
        )
    )
    return f


def _received(tmp_path: Path) -> list[str]:
    path = tmp_path / "received.txt"
    return path.read_text().split() if path.exists() else []


@pytest.mark.timeout(180)
def test_redis_killed_and_restarted_mid_stream_loses_and_duplicates_nothing(make_redis: Any, tmp_path: Path) -> None:
    server: RedisServer = make_redis("--appendonly", "yes", "--appendfsync", "always")
    topology = _topology(tmp_path, server, count=3000, pause=0.001)
    rx = Proc(["up", str(topology), "--runner", "receiving"], cwd=tmp_path)
    rx.wait_for("worker rx started")
    tx = Proc(["up", str(topology), "--runner", "sending"], cwd=tmp_path)
    try:
        tx.wait_for("sent 1000", stream="out", timeout=60)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGKILL)  # no shutdown save: only the AOF survives
        server.proc.wait()
        time.sleep(2)
        server.start()
        assert rx.finish(timeout=120) == 0, "\n".join(rx.err[-40:])
        got = _received(tmp_path)
        assert got == [*map(str, range(3000)), "end"], (len(got), got[:5], got[-5:])
        assert any("lost the connection" in line for line in rx.err)
    finally:
        tx.popen.send_signal(signal.SIGTERM)
        tx.finish(timeout=30)
        rx.finish(timeout=5)


@pytest.mark.timeout(180)
def test_a_receiver_stopped_for_ten_seconds_gets_what_was_sent_meanwhile(redis_server: RedisServer, tmp_path: Path) -> None:
    topology = _topology(tmp_path, redis_server, count=500, pause=0.02)
    rx = Proc(["up", str(topology), "--runner", "receiving"], cwd=tmp_path)
    rx.wait_for("worker rx started")
    tx = Proc(["up", str(topology), "--runner", "sending"], cwd=tmp_path)
    try:
        tx.wait_for("sent 0", stream="out")
        rx.popen.send_signal(signal.SIGTERM)
        assert rx.finish() == 0
        before = len(_received(tmp_path))
        time.sleep(10)
        tx.wait_for("sent all", stream="out", timeout=30)
        rx = Proc(["up", str(topology), "--runner", "receiving"], cwd=tmp_path)
        assert rx.finish(timeout=60) == 0, "\n".join(rx.err[-40:])
        got = _received(tmp_path)
        assert got == [*map(str, range(500)), "end"], (before, len(got))
        assert before < 500  # it really was away for most of them
    finally:
        tx.popen.send_signal(signal.SIGTERM)
        tx.finish(timeout=30)
        rx.finish(timeout=5)


def test_stream_topologies_need_runner_names() -> None:
    from runnerconf.config import TopologyError, load_topology

    with pytest.raises(TopologyError) as exc:
        load_topology("bus: {type: redis, delivery: stream}\nworkers: []\n", environ={})
    assert [(p.path, p.code) for p in exc.value.problems] == [("bus.delivery", "stream-needs-name")]
