"""The control socket of an ``up`` process: ``runnerconf ps`` on the same machine asks it.

A Unix socket, owner-only (mode 0600 in a 0700 directory), at a path derived from the
topology file's absolute path, so ``ps TOPOLOGY`` finds the ``up TOPOLOGY`` it belongs to.
One JSON request per connection, one JSON answer::

    {"op": "status"}  ->  {"ok": true, "runners": [...]}
    {"op": "reload"}  ->  {"ok": true, "outcomes": [...]}   (as SIGHUP)

Requests are bounded (64 KiB, 5 s to send); anything else is answered with an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
import tempfile
from collections.abc import AsyncIterator
from typing import Any

from runnerconf.control.controller import Controller

__all__ = ["ControlSocketError", "ask", "serve", "socket_path"]

logger = logging.getLogger("runnerconf.control")

_MAX_REQUEST = 64 * 1024
_READ_TIMEOUT = 5.0


class ControlSocketError(OSError):
    """No ``up`` process answers on the topology's control socket."""


def socket_path(topology_file: str) -> str:
    """Where the ``up`` process of ``topology_file`` listens (``RUNNERCONF_CONTROL_DIR``, else
    ``$XDG_RUNTIME_DIR/runnerconf``, else a per-user directory under the temp dir)."""
    base = os.environ.get("RUNNERCONF_CONTROL_DIR")
    if not base:
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        base = os.path.join(runtime, "runnerconf") if runtime else os.path.join(tempfile.gettempdir(), f"runnerconf-{os.getuid()}")
    key = hashlib.sha256(os.path.realpath(topology_file).encode()).hexdigest()[:20]
    return os.path.join(base, f"{key}.sock")


@contextlib.asynccontextmanager
async def serve(controller: Controller, topology_file: str) -> AsyncIterator[str | None]:
    """Serve the control socket while the block runs (yields its path, or None if it cannot be
    made: ``ps`` then cannot ask this process, which is logged, and ``up`` goes on)."""
    path = socket_path(topology_file)
    try:
        directory = os.path.dirname(path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.lstat(directory)
        if st.st_uid != os.getuid() or st.st_mode & 0o077 or not os.path.isdir(directory) or os.path.islink(directory):
            # Someone else's directory (made first in a shared /tmp) could swap our socket.
            raise PermissionError(f"{directory} is not a private directory of this user (owner and mode 0700 expected)")
        if _answers(path):
            logger.warning("another `up` of %s serves %s; `ps` will ask that one", topology_file, path)
            yield None
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # left by a process that was killed
        server = await asyncio.start_unix_server(lambda r, w: _handle(controller, r, w), path=path)
        os.chmod(path, 0o600)
    except OSError as exc:
        logger.warning("cannot serve the control socket %s (%s): `runnerconf ps` cannot ask this process", path, exc.strerror or exc)
        yield None
        return
    try:
        yield path
    finally:
        server.close()
        with contextlib.suppress(OSError):
            os.unlink(path)


def _answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(0.5)
        try:
            s.connect(path)
        except OSError:
            return False
    return True


async def _handle(controller: Controller, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        try:
            line = await asyncio.wait_for(reader.readline(), _READ_TIMEOUT)
            request = json.loads(line[:_MAX_REQUEST]) if len(line) <= _MAX_REQUEST else None
        except (TimeoutError, ValueError, asyncio.LimitOverrunError):
            request = None
        answer: dict[str, Any]
        if not isinstance(request, dict) or request.get("op") not in ("status", "reload"):
            answer = {"ok": False, "error": 'expected one JSON line: {"op": "status"} or {"op": "reload"}'}
        elif request["op"] == "status":
            answer = {"ok": True, "runners": controller.status()}
        else:
            outcomes = await controller.reload("control socket")
            answer = {"ok": outcomes is not None and all(o.ok for o in outcomes), "outcomes": [o.to_dict() for o in outcomes or []]}
        writer.write(json.dumps(answer).encode() + b"\n")
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    except Exception:  # a bug here must not reach the loop's handler, nor stop the socket
        logger.exception("control socket: the request failed")
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


def ask(topology_file: str, op: str = "status", timeout: float = 10.0) -> dict[str, Any]:
    """Ask the ``up`` process of ``topology_file`` (blocking).

    Raises:
        ControlSocketError: nobody listens there, or the answer is not one.
    """
    path = socket_path(topology_file)
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(json.dumps({"op": op}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except (FileNotFoundError, ConnectionRefusedError):
        raise ControlSocketError(f"no `runnerconf up` of this topology is running on this machine (no answer on {path})") from None
    except OSError as exc:
        raise ControlSocketError(f"cannot ask {path}: {exc.strerror or exc}") from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise ControlSocketError(f"{path} did not answer with JSON") from None
    if not isinstance(answer, dict):
        raise ControlSocketError(f"{path} did not answer with a JSON object")
    return answer
