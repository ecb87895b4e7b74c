"""Transport security through the URL, as the README sets it up: TLS (``rediss://`` with a
self-signed CA) and a Redis ACL user limited to the bus channel's keys, on a real redis-server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runnerconf.bus import BusDataMessage

from .conftest import free_port, require_redis_package
from .helpers import ROOT, Recorder, eventually

require_redis_package()
import redis  # noqa: E402

pytestmark = pytest.mark.redis

PASSWORD = "bot-password-not-to-be-logged"


@dataclass
class TlsRedis:
    port: int
    ca: Path

    def url(self, user: str = "bot", password: str = PASSWORD, ca: bool = True) -> str:
        query = f"?ssl_ca_certs={self.ca}" if ca else ""
        return f"rediss://{user}:{password}@127.0.0.1:{self.port}/0{query}"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_redis(redis_binary: str, tmp_path: Path) -> Iterator[TlsRedis]:
    """A redis-server that speaks TLS only (certificate from a CA made here) and knows one user,
    ``bot``, allowed the keys and channels of the bus channel ``guarded`` and nothing else."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test CA (apt-get install openssl)")
    d = tmp_path / "tls"
    d.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=runnerconf test CA", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "ext", cwd=d)
    # The README's ACL file: no default user; ``bot`` may touch the channel's keys and channels.
    (d / "users.acl").write_text(f"user default off\nuser bot on >{PASSWORD} ~guarded* &guarded* +@all -@dangerous\n")
    port = free_port()
    proc = subprocess.Popen(
        [
            redis_binary,
            "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
            "--tls-cert-file", "server.crt", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.crt",
            "--tls-auth-clients", "no",
            "--save", "", "--appendonly", "no", "--dir", str(d), "--logfile", "redis.log",
            "--aclfile", "users.acl",
        ],
        cwd=d,
    )  # fmt: skip
    server = TlsRedis(port, d / "ca.crt")
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(server.url()).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_acl_user_reaches_the_channel_and_nothing_else(tls_redis: TlsRedis) -> None:
    client = redis.Redis.from_url(tls_redis.url())
    client.xadd("guarded", {"f": "x"})
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.set("another-key", "x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.publish("another-channel", "x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.flushall()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(f"rediss://127.0.0.1:{tls_redis.port}/0?ssl_ca_certs={tls_redis.ca}").set("guarded", "x")




@pytest.mark.parametrize("delivery", ["pubsub", "stream"])
async def test_the_bus_works_over_tls_as_the_acl_user(tls_redis: TlsRedis, delivery: str) -> None:
    from runnerconf.bus.redis import RedisBus

    rx = Recorder("rx")
    a = RedisBus(tls_redis.url(), channel="guarded", delivery=delivery, group="a" if delivery == "stream" else None)
    b = RedisBus(tls_redis.url(), channel="guarded", delivery=delivery, group="b" if delivery == "stream" else None)
    await b.subscribe(rx)
    await a.start()
    await b.start()
    try:
        for i in range(100):
            await a.send(BusDataMessage(source="tx", target="rx", payload=i))
        await eventually(lambda: rx.got == list(range(100)))
    finally:
        await a.stop()
        await b.stop()


def _up(url: str) -> subprocess.CompletedProcess[str]:
    bus = f"bus={{type: redis, url: '{url}', channel: guarded, delivery: stream}}"
    return subprocess.run(
        [sys.executable, "-m", "runnerconf", "up", "configs/hello.yaml", "--set", bus],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_up_over_tls_runs_and_an_untrusted_server_is_a_start_up_error(tls_redis: TlsRedis) -> None:
    result = _up(tls_redis.url())
    assert result.returncode == 0, result.stderr
    assert ">> Hello, world!" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr

    # Without the CA, the server's certificate is not trusted: the connection is refused.
    result = _up(tls_redis.url(ca=False))
    assert result.returncode == 3, result.stderr
    assert "certificate verify failed" in result.stderr and "Traceback" not in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
