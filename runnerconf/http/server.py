"""A small HTTP/1.1 server on asyncio for the probes: GET /healthz, /readyz and /metrics.

Requests are read within a bounded size and time; every answer closes the connection. Nothing
else is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from runnerconf.http.metrics import render_metrics
from runnerconf.http.status import health, readiness
from runnerconf.workers.runner import WorkerRunner

__all__ = ["HealthServer", "parse_address", "serve"]

logger = logging.getLogger(__name__)

_MAX_REQUEST = 8192
_READ_TIMEOUT = 5.0
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 400: "Bad Request", 501: "Not Implemented", 503: "Service Unavailable"}


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9100``; an empty host listens everywhere) -> (host, port)."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


class HealthServer:
    """Answers the probes about ``runners`` on ``host:port`` (0: any free port)."""

    def __init__(self, runners: Sequence[WorkerRunner], host: str, port: int) -> None:
        self.runners = list(runners)
        self.host, self.port = host, port
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, limit=_MAX_REQUEST)
        sock = self._server.sockets[0].getsockname()
        self.port = int(sock[1])
        logger.info("serving /healthz, /readyz and /metrics on %s:%d", self.host, self.port, extra={"event": "http_started"})

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method = "GET"
        try:
            method, (status, body, kind) = await asyncio.wait_for(self._answer(reader), _READ_TIMEOUT)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, ConnectionError):
            status, body, kind = 400, b"bad request\n", "text/plain"
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + (body if method != "HEAD" else b""))
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[str, tuple[int, bytes, str]]:
        line = await reader.readuntil(b"\r\n")
        while (await reader.readuntil(b"\r\n")) != b"\r\n":
            pass  # headers: read and ignored
        parts = line.decode("latin-1").split()
        if len(parts) != 3:
            return "GET", (400, b"bad request\n", "text/plain")
        method, target, _ = parts
        return method, self._route(method, target.split("?", 1)[0])

    def _route(self, method: str, path: str) -> tuple[int, bytes, str]:
        if method not in ("GET", "HEAD"):
            return 405, b"only GET\n", "text/plain"
        if path == "/healthz":
            return _json(*health(self.runners))
        if path == "/readyz":
            return _json(*readiness(self.runners))
        if path == "/metrics":
            try:
                text, kind = render_metrics(self.runners)
            except ImportError as exc:
                return 501, f"{exc}\n".encode(), "text/plain"
            return 200, text, kind
        return 404, b"not found: try /healthz, /readyz or /metrics\n", "text/plain"


def _json(ok: bool, body: dict[str, Any]) -> tuple[int, bytes, str]:
    return (200 if ok else 503), (json.dumps(body) + "\n").encode(), "application/json"


@contextlib.asynccontextmanager
async def serve(runners: Sequence[WorkerRunner], address: str) -> AsyncIterator[HealthServer]:
    """Serve the probes on ``address`` for the duration of the block."""
    host, port = parse_address(address)
    server = HealthServer(runners, host, port)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
