"""RedisBus against a real redis-server started by the test."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import pytest

from runnerconf.bus import BusDataMessage, BusUnavailableError
from runnerconf.bus.wire import WireError, encode_frame
from runnerconf.workers.base_worker import BaseWorker
from runnerconf.workers.runner import WorkerRunner

from .conftest import RedisServer, require_redis_package
from .helpers import Recorder, eventually

require_redis_package()
import redis  # noqa: E402
from runnerconf.bus.redis import INSTALL_HINT, RedisBus  # noqa: E402

pytestmark = pytest.mark.redis




async def pair(server: RedisServer, **kwargs: Any) -> tuple[RedisBus, RedisBus, Recorder, Recorder]:
    a = RedisBus(server.url, channel="t", **kwargs)
    b = RedisBus(server.url, channel="t", **kwargs)
    ra, rb = Recorder("ra"), Recorder("rb")
    await a.subscribe(ra)
    await b.subscribe(rb)
    await a.start()
    await b.start()
    return a, b, ra, rb


async def test_messages_cross_in_order_and_echo_is_not_delivered_twice(redis_server: RedisServer) -> None:
    a, b, ra, rb = await pair(redis_server)
    for i in range(5000):
        await a.send(BusDataMessage(source="ra", target="rb", payload=i))
    await a.send(BusDataMessage(source="ra", payload="to all"))
    await eventually(lambda: len(rb.got) == 5001)
    assert rb.got == [*range(5000), "to all"]
    await asyncio.sleep(0.05)
    assert ra.got == ["to all"]  # delivered locally once; its echo from Redis skipped
    await a.start()  # idempotent: no second reader, so no duplicates
    await a.send(BusDataMessage(source="rb", target="ra", payload="again"))
    await eventually(lambda: "again" in ra.got)
    await asyncio.sleep(0.05)
    assert ra.got.count("again") == 1
    await a.stop()
    await b.stop()
    await a.stop()  # idempotent


async def test_messages_sent_before_start_are_published_once_started(redis_server: RedisServer) -> None:
    b = RedisBus(redis_server.url, channel="t")
    rb = Recorder("rb")
    await b.subscribe(rb)
    await b.start()
    a = RedisBus(redis_server.url, channel="t")
    await a.send(BusDataMessage(source="x", target="rb", payload="early"))
    await a.start()
    await eventually(lambda: rb.got == ["early"])
    await a.stop()
    await b.stop()


async def test_an_unreachable_server_is_a_clear_error() -> None:
    from .conftest import free_port

    bus = RedisBus(f"redis://:secret@127.0.0.1:{free_port()}/0", channel="t", connect_timeout=1)
    with pytest.raises(BusUnavailableError, match=r"cannot reach Redis at redis://:\*\*\*@127\.0\.0\.1"):
        await bus.start()
    assert not bus.running


async def test_garbage_on_the_channel_is_logged_and_skipped(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    b = RedisBus(redis_server.url, channel="t")
    rb = Recorder("rb")
    await b.subscribe(rb)
    await b.start()
    client = redis.asyncio.Redis.from_url(redis_server.url)
    garbage = [
        b"\xff\xfe not even utf-8",
        b"plain text",
        b'{"v": 1}',
        b'{"v": 99, "from": "x", "messages": []}',
        b'{"v":1,"from":"x1","messages":[{"type":"os.system","fields":{"source":"rm -rf /"}}]}',
        b'{"v":1,"from":"x2","messages":[{"type":"BusDataMessage","fields":{"source":"x","__class__":"evil"}}]}',
        b'{"v":1,"from":"x3","messages":[{"type":"BusDataMessage","fields":{"source":5}}, 7]}',
    ]
    with caplog.at_level(logging.WARNING, logger="runnerconf.bus.network.redis"):
        for g in garbage:
            await client.publish("t", g)
        await client.publish("t", encode_frame("x", [BusDataMessage(source="x", target="rb", payload="still fine")]))
        await eventually(lambda: rb.got == ["still fine"])
    assert b.bad_frames == 8
    # Logged once a minute per sender: the four frames of unknown origin share one line.
    assert "skipped from ?: a frame that is not runnerconf's" in caplog.text
    assert caplog.text.count("skipped from ?") == 1
    assert "skipped from x1: a message: unknown message type 'os.system'" in caplog.text
    assert "BusDataMessage has no field(s) __class__" in caplog.text
    assert caplog.text.count("skipped from x3") == 1  # its two bad messages: one line
    await client.aclose()
    await b.stop()


async def test_payloads_must_be_json(redis_server: RedisServer) -> None:
    a, b, _, _ = await pair(redis_server)
    with pytest.raises(WireError, match="JSON"):
        await a.send(BusDataMessage(source="ra", target="elsewhere", payload=object()))
    await a.stop()
    await b.stop()


class TcpProxy:
    """A loopback TCP proxy to Redis that a test can cut and restore: one client loses its
    connection while the server (and the other clients) stay up."""

    def __init__(self, target_port: int) -> None:
        from .conftest import free_port

        self.target_port = target_port
        self.port = free_port()
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.handlers: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        for w in list(self.writers):
            w.close()
        self.writers.clear()
        await asyncio.gather(*self.handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        task.add_done_callback(self.handlers.discard)
        self.writers.add(writer)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_what_a_disconnected_bus_sends_is_kept_and_sent_in_order_when_back(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = TcpProxy(redis_server.port)
    await proxy.start()
    a = RedisBus(f"redis://127.0.0.1:{proxy.port}/0", channel="t", reconnect_initial=0.05, reconnect_max=0.2)
    b = RedisBus(redis_server.url, channel="t")
    rb = Recorder("rb")
    await b.subscribe(rb)
    await a.start()
    await b.start()
    await a.send(BusDataMessage(source="x", target="rb", payload="before"))
    await eventually(lambda: rb.got == ["before"])
    with caplog.at_level(logging.WARNING, logger="runnerconf.bus.network.redis"):
        await proxy.cut()
        await eventually(lambda: not a.connected)
        for i in range(3):
            await a.send(BusDataMessage(source="x", target="rb", payload=f"while cut off {i}"))
        await asyncio.sleep(0.3)
        assert rb.got == ["before"]  # nothing got through while cut off...
        await proxy.start()
        await eventually(lambda: len(rb.got) == 4, timeout=10)  # ...and all of it, in order, after
        await a.send(BusDataMessage(source="x", target="rb", payload="after"))
        await eventually(lambda: len(rb.got) == 5)
        await eventually(lambda: a.connected)  # its subscription is back too
    assert rb.got == ["before", "while cut off 0", "while cut off 1", "while cut off 2", "after"]
    assert "lost the connection" in caplog.text and "reconnected" in caplog.text
    await a.stop()
    await b.stop()
    await proxy.cut()


async def test_redis_stopped_and_restarted_mid_run(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    a, b, ra, rb = await pair(redis_server, reconnect_initial=0.05, reconnect_max=0.2)
    await a.send(BusDataMessage(source="x", target="rb", payload="before"))
    await eventually(lambda: rb.got == ["before"])
    with caplog.at_level(logging.WARNING, logger="runnerconf.bus.network.redis"):
        redis_server.stop()
        await eventually(lambda: not a.connected and not b.connected)
        await a.send(BusDataMessage(source="x", target="rb", payload="while down"))
        redis_server.start()
        await eventually(lambda: a.connected and b.connected, timeout=10)
        await eventually(lambda: a._drained.is_set(), timeout=10)  # what it kept was published
        await b.send(BusDataMessage(source="x", target="ra", payload="after"))
        await eventually(lambda: ra.got == ["after"])
    # Whether "while down" reached b depends on which of the two resubscribed first: Redis keeps
    # nothing for an absent subscriber (see the RedisBus docstring).
    assert rb.got[0] == "before" and set(rb.got) <= {"before", "while down"}
    assert caplog.text.count("reconnected") == 2
    await a.stop()
    await b.stop()


def test_missing_redis_package_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ImportError, match=r"pip install 'runnerconf\[redis\]'"):
        RedisBus("redis://127.0.0.1:1/0")
    assert "runnerconf[redis]" in INSTALL_HINT


# -- runners over Redis ------------------------------------------------------------------------


class Idle(BaseWorker):
    pass


async def start_runner(server: RedisServer, name: str, *workers: BaseWorker, **kwargs: Any) -> tuple[WorkerRunner, asyncio.Task[None]]:
    runner = WorkerRunner(name=name, bus=RedisBus(server.url, channel="t", **kwargs), handle_sigint=False)
    await runner.add_workers(*workers)
    task = asyncio.create_task(runner.run(auto_end=False))
    await eventually(lambda: runner.running)
    return runner, task


async def test_runners_exchange_registries_and_watch_across(redis_server: RedisServer) -> None:
    waited: list[str] = []

    class Waiter(BaseWorker):
        async def main(self) -> None:
            data = await self.registry.wait_for("far")
            waited.append(f"{data.worker_name}@{data.runner}")
            await self.wait_for_stop()

    a, ta = await start_runner(redis_server, "edge-1", Waiter("waiter"), Idle("near"))
    b, tb = await start_runner(redis_server, "edge-2")
    await eventually(lambda: "near" in b.registry)
    assert b.registry.get("near").runner == "edge-1"  # type: ignore[union-attr]
    await b.add_workers(Idle("far"))
    await eventually(lambda: waited == ["far@edge-2"])
    # A finished worker leaves the peers' registries too.
    class Brief(BaseWorker):
        async def main(self) -> None:
            await asyncio.sleep(0.05)

    await b.add_workers(Brief("brief"))
    await eventually(lambda: "brief" in a.registry)
    await eventually(lambda: "brief" not in a.registry)
    await a.end()
    await b.end()
    await asyncio.gather(ta, tb)


async def test_a_restarted_runner_with_the_same_name_is_announced_again(redis_server: RedisServer) -> None:
    b, tb = await start_runner(redis_server, "edge-2")
    a, ta = await start_runner(redis_server, "edge-1", Idle("first-life"))
    await eventually(lambda: "first-life" in b.registry)
    await a.end()
    await ta
    await eventually(lambda: "first-life" not in b.registry)  # it said it left
    a2, ta2 = await start_runner(redis_server, "edge-1", Idle("second-life"))
    await eventually(lambda: "second-life" in b.registry)
    assert b.registry.get("second-life").runner == "edge-1"  # type: ignore[union-attr]
    await a2.end()
    await b.end()
    await asyncio.gather(ta2, tb)


async def test_registries_are_exchanged_again_after_redis_restarts(redis_server: RedisServer) -> None:
    a, ta = await start_runner(redis_server, "edge-1", Idle("one"), reconnect_initial=0.05)
    b, tb = await start_runner(redis_server, "edge-2", reconnect_initial=0.05)
    await eventually(lambda: "one" in b.registry)
    redis_server.stop()
    await eventually(lambda: not a.bus.connected)  # type: ignore[attr-defined]
    await a.add_workers(Idle("added-while-down"))
    redis_server.start()
    await eventually(lambda: "added-while-down" in b.registry, timeout=10)
    await a.end()
    await b.end()
    await asyncio.gather(ta, tb)


async def test_stop_returns_when_the_client_swallows_the_cancel(redis_server: RedisServer) -> None:
    """redis-py can catch the CancelledError of a command in flight and return as if it had
    been sent: stop() must not wait for ever for the publisher (`runnerconf down` did)."""
    bus = RedisBus(redis_server.url, channel="t")
    await bus.start()
    publish = bus._client.publish
    entered = asyncio.Event()

    async def swallowing_publish(channel: str, data: bytes) -> Any:
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return await publish(channel, data)  # as if nothing happened

    bus._client.publish = swallowing_publish  # type: ignore[method-assign]
    await bus.send(BusDataMessage(source="a", payload="in flight"))
    await asyncio.wait_for(entered.wait(), 5)
    await asyncio.wait_for(bus.stop(flush_timeout=0.1), 10)
    assert not bus.running
