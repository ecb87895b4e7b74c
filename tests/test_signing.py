"""Signed frames: the signer on its own, then a signed bus against a real redis-server and real
`runnerconf up` / `runnerconf down` processes that forged, wrong-key and replayed frames do not move."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runnerconf.bus import BusDataMessage, BusMessage
from runnerconf.bus.messages import BusEndMessage, BusWorkerRegistryMessage
from runnerconf.bus.serializers import JSONMessageSerializer
from runnerconf.bus.serializers.signed import SignedSerializer
from runnerconf.bus.signing import FrameSigner, SignatureError
from runnerconf.registry.types import WorkerRegistryEntry

from .conftest import RedisServer, free_port, require_redis_package
from .helpers import ROOT, Proc, Recorder, eventually

SECRET = "s3cret-for-the-tests-0123456789"
OLD = "the-old-secret-still-accepted-42"

# -- the signer ---------------------------------------------------------------------------------


def test_a_signed_frame_verifies_and_gives_back_the_frame() -> None:
    signer = FrameSigner([SECRET])
    signed = signer.sign(b'{"v":1}')
    assert signed.endswith(b'\n{"v":1}') and SECRET.encode() not in signed
    assert FrameSigner([SECRET]).verify(signed) == b'{"v":1}'


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda f: f.split(b"\n", 1)[1], "unsigned"),  # the frame alone
        (lambda f: f[:-1] + b"X", "bad-mac"),  # one byte of the frame changed
        (lambda f: f[:5] + f[5:].replace(b".", b"-", 1), "malformed"),  # a field too few
        (lambda f: f.split(b"\n", 1)[0], "malformed"),  # no end to the header... and no frame
        (lambda f: f[:5] + b"00000000" + f[13:], "unknown-key"),
    ],
)
def test_a_frame_not_signed_right_is_refused_with_its_reason(mangle: Any, reason: str) -> None:
    signed = FrameSigner([SECRET]).sign(b"frame")
    with pytest.raises(SignatureError) as exc:
        FrameSigner([SECRET]).verify(mangle(signed))
    assert exc.value.reason == reason


def test_a_frame_signed_with_another_secret_is_an_unknown_key() -> None:
    with pytest.raises(SignatureError) as exc:
        FrameSigner([SECRET]).verify(FrameSigner(["another-secret-of-enough-length"]).sign(b"x"))
    assert exc.value.reason == "unknown-key"


def test_a_frame_outside_the_window_is_expired_either_way() -> None:
    signer = FrameSigner([SECRET], max_age=30)
    now = time.time()
    assert signer.verify(signer.sign(b"x", now=now - 29), at=now) == b"x"
    for skew in (-31, 31):  # too old, or from too far ahead of this clock
        with pytest.raises(SignatureError) as exc:
            signer.verify(signer.sign(b"x", now=now + skew), at=now)
        assert exc.value.reason == "expired"


def test_a_replayed_frame_is_refused() -> None:
    signer = FrameSigner([SECRET])
    signed = FrameSigner([SECRET]).sign(b"x")
    assert signer.verify(signed) == b"x"
    with pytest.raises(SignatureError) as exc:
        signer.verify(signed)
    assert exc.value.reason == "replayed"


def test_nonce_memory_is_bounded_by_the_window() -> None:
    signer = FrameSigner([SECRET], max_age=1)
    now = time.time()
    for i in range(1000):
        signer.verify(signer.sign(b"x", now=now), at=now)
    assert len(signer._nonces) == 1000
    later = now + 5  # past twice the window: the old nonces are forgotten (time refuses them now)
    signer.verify(signer.sign(b"x", now=later), at=later)
    assert len(signer._nonces) == 1


def test_key_rotation_signs_with_the_first_and_accepts_every_one() -> None:
    rotated = FrameSigner([SECRET, OLD])
    # A peer not yet rotated (old key only) cannot read the new key's frames...
    with pytest.raises(SignatureError):
        FrameSigner([OLD]).verify(rotated.sign(b"new"))
    # ...but the rotated one reads both, so peers can be rotated one at a time.
    assert rotated.verify(FrameSigner([OLD]).sign(b"old")) == b"old"
    assert rotated.verify(FrameSigner([SECRET]).sign(b"new")) == b"new"


def test_short_and_missing_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        FrameSigner(["short"])
    with pytest.raises(ValueError, match="at least one"):
        FrameSigner([])


def test_the_signed_serializer_never_decodes_a_forged_frame() -> None:
    plain = JSONMessageSerializer()
    signed = SignedSerializer(JSONMessageSerializer(), FrameSigner([SECRET]))
    message = BusDataMessage(source="a", target="b", payload={"x": 1})
    assert signed.deserialize(plain.serialize(message)) is None
    assert signed.deserialize(signed.serialize(message)) == message
    frame = signed.frames("me", [signed.encode(message)])[0]
    assert signed.frame_sender(frame) == "me"
    assert signed.decode(frame)[1] == [message]
    with pytest.raises(SignatureError):
        signed.decode(frame)  # the same frame again


# -- a signed bus on a real redis-server -------------------------------------------------------




def _bus(server: RedisServer, secrets: list[str] | None, delivery: str = "pubsub", **kwargs: Any) -> Any:
    from runnerconf.bus.redis import RedisBus

    serializer = JSONMessageSerializer()
    if secrets is not None:
        serializer = SignedSerializer(serializer, FrameSigner(secrets))
    return RedisBus(server.url, channel="signed", serializer=serializer, delivery=delivery, group=kwargs.pop("group", None), **kwargs)


@pytest.mark.redis
@pytest.mark.parametrize("delivery", ["pubsub", "stream"])
async def test_a_signed_bus_hands_out_only_what_its_peers_signed(redis_server: RedisServer, delivery: str) -> None:
    require_redis_package()
    rx = Recorder("rx")
    receiver = _bus(redis_server, [SECRET], delivery, group="rx-runner")
    await receiver.subscribe(rx)
    await receiver.start()
    peers = {
        "signed": _bus(redis_server, [SECRET], delivery),
        "rotated": _bus(redis_server, [OLD, SECRET], delivery),  # signs with OLD, which rx does not accept
        "unsigned": _bus(redis_server, None, delivery),
    }
    for peer in peers.values():
        await peer.start()
    try:
        for label, peer in peers.items():
            await peer.send(BusDataMessage(source=label, target="rx", payload=label))
        await eventually(lambda: receiver.rejected_frames == {"unknown-key": 1, "unsigned": 1})
        await asyncio.sleep(0.2)
        assert rx.got == ["signed"]
    finally:
        for peer in peers.values():
            await peer.stop()
        await receiver.stop()


@pytest.mark.redis
async def test_a_frame_replayed_on_the_channel_is_refused(redis_server: RedisServer) -> None:
    require_redis_package()
    import redis.asyncio as aioredis

    rx = Recorder("rx")
    receiver = _bus(redis_server, [SECRET])
    await receiver.subscribe(rx)
    await receiver.start()
    sender = _bus(redis_server, [SECRET])
    await sender.start()
    client = aioredis.Redis.from_url(redis_server.url)
    capture = client.pubsub()
    await capture.subscribe("signed")
    try:
        await sender.send(BusDataMessage(source="tx", target="rx", payload="once"))
        await eventually(lambda: rx.got == ["once"])
        frame = None
        while frame is None:
            item = await capture.get_message(timeout=1)
            if item is not None and item["type"] == "message":
                frame = item["data"]
        await client.publish("signed", frame)  # the very bytes, again
        await eventually(lambda: receiver.rejected_frames == {"replayed": 1})
        assert rx.got == ["once"]
    finally:
        await capture.aclose()
        await client.aclose()
        await sender.stop()
        await receiver.stop()


# -- real runner processes ---------------------------------------------------------------------

TOPOLOGY = """\
bus:
  type: redis
  url: {url}
  channel: guarded
  secret: ${{RUNNERCONF_BUS_SECRET}}
runners:
  - name: edge-1
    workers:
      - name: ticker
        class: runnerconf.examples.distributed:Ticker
        params: {{to: counter, every: 0.2}}
        depends_on: [counter]
  - name: edge-2
    workers:
      - name: counter
        class: runnerconf.examples.distributed:Counter
"""


@pytest.fixture
def guarded(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    require_redis_package()
    topology = tmp_path / "guarded.yaml"
    topology.write_text(TOPOLOGY.format(url=redis_server.url))
    yield topology, {**os.environ, "RUNNERCONF_BUS_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}


def _runnerconf(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runnerconf", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


async def _forge(url: str, *messages: BusMessage, secret: str | None = None) -> None:
    """Publish ``messages`` on the guarded channel as an intruder would: unsigned or with ``secret``."""
    from runnerconf.bus.redis import RedisBus

    serializer = JSONMessageSerializer()
    if secret is not None:
        serializer = SignedSerializer(serializer, FrameSigner([secret]))
    bus = RedisBus(url, channel="guarded", serializer=serializer)
    await bus.start()
    try:
        for message in messages:
            await bus.send(message)
    finally:
        await bus.stop()


@pytest.mark.redis
@pytest.mark.timeout(120)
def test_forged_ends_and_registries_move_nothing_and_the_real_down_still_works(
    guarded: tuple[Path, dict[str, str]], redis_server: RedisServer
) -> None:
    import redis

    topology, env = guarded
    client = redis.Redis.from_url(redis_server.url)
    capture = client.pubsub()
    capture.subscribe("guarded")
    port = free_port()
    edge1 = Proc(["up", str(topology), "--runner", "edge-1", "--http", f"127.0.0.1:{port}"], env)
    try:
        edge1.wait_for("worker ticker waits for counter")
        # An intruder claims that edge-2 runs the counter (so the ticker would start ticking),
        # then tries to end the runner: unsigned, and signed with a key nobody here accepts.
        forged_roster = BusWorkerRegistryMessage(
            source="edge-2", target="@runners", runner="edge-2", workers=[WorkerRegistryEntry(name="counter")], full=True
        )
        end = BusEndMessage(source="intruder", target="@runners", reason="forged")
        asyncio.run(_forge(redis_server.url, forged_roster, end))
        asyncio.run(_forge(redis_server.url, forged_roster, end, secret="a-key-this-bus-never-had"))
        edge1.wait_for("unknown key")
        time.sleep(1.0)
        assert edge1.popen.poll() is None, "a forged end stopped the runner"
        assert not any("end asked by intruder" in line for line in edge1.err)
        refusals = "\n".join(line for line in edge1.err if "refused unread" in line)
        assert "without a signature" in refusals and "unknown key" in refusals
        assert not any(b'"tick"' in frame for frame in _drain(capture)), "a forged roster satisfied depends_on"
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        counted = {
            m.group(1): float(m.group(2))
            for m in re.finditer(r'runnerconf_redis_rejected_frames_total\{bus="[^"]*",reason="([a-z-]+)"\} (\S+)', metrics)
        }
        assert set(counted) == {"unsigned", "unknown-key"} and min(counted.values()) >= 1, metrics
        # The real peer, signed, does satisfy it, and the real `down` (signed) ends both.
        edge2 = Proc(["up", str(topology), "--runner", "edge-2"], env)
        try:
            edge1.wait_for("counter acknowledged", stream="out", timeout=30)
            result = _runnerconf("down", str(topology), env=env)
            assert result.returncode == 0, result.stderr
            assert edge1.finish(timeout=30) == 0
            assert edge2.finish(timeout=30) == 0
        finally:
            edge2.finish(timeout=5)
    finally:
        capture.close()
        client.close()
        edge1.finish(timeout=5)


def _drain(capture: Any, quiet: float = 0.5) -> list[bytes]:
    """Every frame published on the captured channel until it stays quiet for ``quiet`` seconds."""
    frames = []
    while (item := capture.get_message(timeout=quiet)) is not None:
        if item["type"] == "message":
            frames.append(item["data"])
    return frames


@pytest.mark.redis
@pytest.mark.timeout(120)
def test_a_captured_down_replayed_to_a_running_runner_is_refused(guarded: tuple[Path, dict[str, str]], redis_server: RedisServer) -> None:
    import redis

    topology, env = guarded
    edge2 = Proc(["up", str(topology), "--runner", "edge-2"], env)
    client = redis.Redis.from_url(redis_server.url)
    capture = client.pubsub()
    capture.subscribe("guarded")
    try:
        edge2.wait_for("worker counter started")
        # `down --runner edge-1` (not running) says hello to every runner: edge-2 answers it.
        result = _runnerconf("down", str(topology), "--runner", "edge-1", "--timeout", "2", env=env)
        assert result.returncode == 0, result.stderr
        frames = _drain(capture)
        down_frames = [f for f in frames if b"runnerconf-down-" in f]
        assert down_frames, frames
        for frame in down_frames:
            client.publish("guarded", frame)
        edge2.wait_for("a replay")
        assert edge2.popen.poll() is None
        assert _runnerconf("down", str(topology), env=env).returncode == 0
        assert edge2.finish(timeout=30) == 0
    finally:
        capture.close()
        client.close()
        edge2.finish(timeout=5)


@pytest.mark.redis
def test_an_unsigned_bus_is_announced_once_and_a_missing_secret_file_is_a_start_up_error(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    require_redis_package()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    hello = (ROOT / "configs" / "hello.yaml").read_text()  # ends by itself
    bus = f"bus={{type: redis, url: '{redis_server.url}', channel: hello}}"
    result = _runnerconf("up", "configs/hello.yaml", "--set", bus, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("the bus is not authenticated") == 1

    missing = tmp_path / "missing.yaml"
    missing.write_text(hello + f"bus: {{type: redis, url: '{redis_server.url}', channel: hello, secret_file: bus.secret}}\n")
    result = _runnerconf("up", str(missing), env=env)
    assert result.returncode == 3, result.stderr
    assert "bus.secret" in result.stderr and "Traceback" not in result.stderr
    result = _runnerconf("validate", "--imports", str(missing), env=env)
    assert result.returncode == 1 and "secret_file" in result.stdout + result.stderr

    (tmp_path / "bus.secret").write_text(f"# rotated on 2026-12-01\n{SECRET}\n{OLD}\n")
    result = _runnerconf("up", str(missing), env=env)
    assert result.returncode == 0, result.stderr
    assert "not authenticated" not in result.stderr and SECRET not in result.stderr + result.stdout
