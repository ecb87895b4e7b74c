"""Health probes against real servers on loopback: exec, http and tcp."""

from __future__ import annotations

import asyncio
import sys

import pytest

from runnerconf.workers.health import HealthCheck, probe

from .conftest import free_port


async def test_exec_probe() -> None:
    assert await probe(HealthCheck(exec=[sys.executable, "-c", "pass"])) is None
    reason = await probe(HealthCheck(exec=[sys.executable, "-c", "print('disk full'); raise SystemExit(4)"]))
    assert reason == "exit code 4: disk full"
    slow = await probe(HealthCheck(exec=[sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.2))
    assert slow == "no answer within 0.2s"


async def test_http_probe() -> None:
    statuses = iter([200, 302, 500])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {next(statuses)} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    check = HealthCheck(http=f"http://127.0.0.1:{port}/health")
    assert await probe(check) is None
    assert await probe(check) is None  # a redirect is healthy too
    assert await probe(check) == "HTTP 500"
    server.close()
    await server.wait_closed()
    assert (await probe(check) or "").startswith("ConnectionRefusedError")


async def test_tcp_probe() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    assert await probe(HealthCheck(tcp=f"127.0.0.1:{port}")) is None
    server.close()
    await server.wait_closed()
    assert await probe(HealthCheck(tcp=f"127.0.0.1:{free_port()}")) is not None


def test_a_check_needs_exactly_one_probe_and_sane_timing() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        HealthCheck(exec=["x"], tcp="h:1")
    with pytest.raises(ValueError, match="interval"):
        HealthCheck(tcp="h:1", interval=0)
