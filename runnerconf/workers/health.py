"""Health checks of supervised commands: run a program, GET a URL, or connect to a port.

As process-compose's probes and Compose's ``healthcheck``: a probe runs every ``interval`` once
``start_period`` is over (a success during it counts; a failure does not), each within
``timeout``; ``retries`` failures in a row make the process unhealthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["HealthCheck", "probe"]

logger = logging.getLogger(__name__)

#: Bytes of a probe program's output kept for the log.
_OUTPUT_LIMIT = 2048


@dataclass(frozen=True)
class HealthCheck:
    """One probe and its timing; exactly one of ``exec``, ``http`` and ``tcp`` is set."""

    exec: Sequence[str] | None = None
    http: str | None = None
    tcp: str | None = None
    interval: float = 10.0
    timeout: float = 1.0
    retries: int = 3
    start_period: float = 0.0

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.exec, self.http, self.tcp)) != 1:
            raise ValueError("a health check needs exactly one of exec, http and tcp")
        if not (self.interval > 0 and self.timeout > 0 and self.start_period >= 0) or self.retries < 1:
            raise ValueError("health check interval and timeout must be > 0, start_period >= 0, retries >= 1")

    def describe(self) -> str:
        if self.exec is not None:
            return "exec " + " ".join(self.exec)
        return f"http {self.http}" if self.http is not None else f"tcp {self.tcp}"


async def probe(check: HealthCheck, *, cwd: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """Run the probe once; None when healthy, else why not."""
    try:
        if check.exec is not None:
            return await asyncio.wait_for(_exec(list(check.exec), cwd, env), check.timeout)
        if check.http is not None:
            return await asyncio.wait_for(_http(check.http), check.timeout)
        assert check.tcp is not None
        return await asyncio.wait_for(_tcp(check.tcp), check.timeout)
    except TimeoutError:
        return f"no answer within {check.timeout:g}s"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"


async def _exec(argv: list[str], cwd: str | None, env: Mapping[str, str] | None) -> str | None:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        output = await proc.stdout.read(_OUTPUT_LIMIT)
        code = await proc.wait()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            await proc.wait()
    if code == 0:
        return None
    text = output.decode(errors="replace").strip().splitlines()
    return f"exit code {code}" + (f": {text[-1][:200]}" if text else "")


async def _http(url: str) -> str | None:
    parts = urllib.parse.urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    reader, writer = await asyncio.open_connection(host, port, ssl=ssl.create_default_context() if secure else None)
    try:
        writer.write(f"GET {target} HTTP/1.0\r\nHost: {parts.netloc}\r\nUser-Agent: runnerconf-healthcheck\r\n\r\n".encode())
        await writer.drain()
        status = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    fields = status.split()
    if len(fields) < 2 or not fields[1].isdigit():
        return "not an HTTP answer"
    code = int(fields[1])
    return None if 200 <= code < 400 else f"HTTP {code}"


async def _tcp(address: str) -> str | None:
    host, _, port = address.rpartition(":")
    _, writer = await asyncio.open_connection(host.strip("[]") or "127.0.0.1", int(port))
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None
