"""Reading topology files: regular files, standard input (``-``), pipes and FIFOs, all bounded.

A file is read at most :data:`MAX_BYTES` bytes far (a bigger one is refused without reading the
rest), a FIFO that nobody writes to is given up after :data:`FIFO_WAIT` seconds instead of
blocking for ever, and bytes that are not UTF-8 are reported with their line and column.
"""

from __future__ import annotations

import os
import select
import stat
import sys
import time

from runnerconf.config.errors import Problem, TopologyError

__all__ = ["FIFO_WAIT", "MAX_BYTES", "STDIN", "display_name", "read_topology_bytes", "read_topology_file"]

#: Largest topology read (bytes).
MAX_BYTES = 16 << 20
#: Seconds a FIFO gets to deliver its first bytes.
FIFO_WAIT = 5.0
#: The name standing for standard input.
STDIN = "-"
_CHUNK = 1 << 16


def display_name(path: str | os.PathLike[str]) -> str:
    """How a path is shown in messages: ``<stdin>`` for standard input, escaped otherwise."""
    text = os.fspath(path)
    if text in (STDIN, "/dev/stdin"):
        return "<stdin>"
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


def read_topology_file(path: str | os.PathLike[str]) -> tuple[str, str]:
    """The text of a topology and the name to report it under.

    Raises:
        TopologyError: no such file, a directory, unreadable, too big, a silent FIFO, not UTF-8.
    """
    name = display_name(path)
    data = read_topology_bytes(path, name)
    return decode(data, name), name


def read_topology_bytes(path: str | os.PathLike[str], name: str) -> bytes:
    text = os.fspath(path)
    try:
        if text in (STDIN, "/dev/stdin"):
            return _read_fd(sys.stdin.fileno(), name, fifo=False)
        fd = os.open(text, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as exc:
        raise _error(name, "file-not-found", "no such file") from exc
    except IsADirectoryError as exc:
        raise _error(name, "unreadable", "is a directory, not a topology file") from exc
    except OSError as exc:
        raise _error(name, "unreadable", f"cannot read the file: {exc.strerror or exc}") from exc
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise _error(name, "unreadable", "is a directory, not a topology file")
        fifo = stat.S_ISFIFO(mode)
        if not fifo:
            os.set_blocking(fd, True)
        return _read_fd(fd, name, fifo=fifo)
    finally:
        os.close(fd)


def _read_fd(fd: int, name: str, *, fifo: bool) -> bytes:
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + FIFO_WAIT
    while True:
        if fifo:
            remaining = deadline - time.monotonic() if not chunks else None
            if remaining is not None and remaining <= 0:
                raise _error(name, "unreadable", f"a FIFO nobody wrote to within {FIFO_WAIT:g}s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                raise _error(name, "unreadable", f"a FIFO nobody wrote to within {FIFO_WAIT:g}s")
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:
            continue
        except OSError as exc:
            raise _error(name, "unreadable", f"cannot read the file: {exc.strerror or exc}") from exc
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BYTES:
            raise _error(name, "too-large", f"the file is larger than {MAX_BYTES // (1 << 20)} MiB; refusing it")
        chunks.append(chunk)


def decode(data: bytes, name: str) -> str:
    """UTF-8 text (a BOM is dropped); bytes that are not UTF-8 are an error at their place."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise TopologyError(
            [Problem(name, line, column, "", "not-utf-8", f"byte {data[exc.start]:#04x} is not UTF-8 text (save the file as UTF-8)")]
        ) from exc


def _error(name: str, code: str, message: str) -> TopologyError:
    return TopologyError([Problem(name, 1, 1, "", code, message)])


def is_path_text(source: str) -> bool:
    """Whether a ``str`` given to the loader names a file (else it is YAML text)."""
    if source in (STDIN, "/dev/stdin"):
        return True
    try:
        if os.path.exists(source):
            return True
    except (OSError, ValueError):  # too long, or a NUL: it is text
        return False
    return "\n" not in source and source.lower().endswith((".yaml", ".yml", ".json"))

