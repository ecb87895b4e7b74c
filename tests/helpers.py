"""Test helpers shared by the test modules."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runnerconf.bus import BusMessage

ROOT = Path(__file__).resolve().parents[1]
from runnerconf.workers.base_worker import BaseWorker


class Probe(BaseWorker):
    """A worker that records its lifecycle hooks; behaviour set by keyword arguments.

    Args:
        work: seconds main() sleeps, then returns (None: the default body, wait for a stop).
        end_delay: seconds main() keeps going after on_end (a slow graceful shutdown).
        fail: exception main() raises.
        ignore_cancel: main() swallows cancellation (a badly written worker).
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        work: float | None = None,
        end_delay: float = 0.0,
        fail: BaseException | None = None,
        fail_start: BaseException | None = None,
        ignore_cancel: bool = False,
        log: list[str] | None = None,
    ) -> None:
        super().__init__(name)
        self.work = work
        self.end_delay = end_delay
        self.fail = fail
        self.fail_start = fail_start
        self.ignore_cancel = ignore_cancel
        self.log = log if log is not None else []
        self.messages: list[BusMessage] = []
        self.released = False  # lets a test finally stop a worker that ignores cancellation

    def note(self, what: str) -> None:
        self.log.append(f"{self.name}:{what}")

    async def on_start(self) -> None:
        self.note("start")
        if self.fail_start is not None:
            raise self.fail_start

    async def on_end(self, reason: str | None) -> None:
        self.note(f"end({reason})")

    async def on_cancel(self, reason: str | None) -> None:
        self.note(f"cancel({reason})")

    async def on_bus_message(self, message: BusMessage) -> None:
        self.messages.append(message)

    async def main(self) -> None:
        if self.ignore_cancel:
            while not self.released:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    self.note("ignored-cancel")
        if self.fail is not None:
            await asyncio.sleep(0.01)
            raise self.fail
        if self.work is not None:
            await asyncio.sleep(self.work)
        else:
            await self.wait_for_stop()
            if self.end_delay:
                await asyncio.sleep(self.end_delay)
        self.note("main-done")


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> None:
    """Wait on a condition in tests (never used for timing claims)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.002)


def until(check: Callable[[], Any], timeout: float = 5.0) -> None:
    """Block until ``check()`` is true (for tests driving processes); AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.02)


def group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is in process group ``pgid``.

    Zombies are left out: in a container whose PID 1 does not reap, a killed grandchild stays a
    zombie, which ``killpg(pgid, 0)`` would still find.
    """
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            return True
    return False


class Recorder:
    """A bus subscriber that records what it is handed: payloads (or messages that have none)."""

    def __init__(self, name: str, delay: float = 0.0) -> None:
        self.name = name
        self.got: list[Any] = []
        self.delay = delay

    async def on_bus_message(self, message: BusMessage) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.got.append(getattr(message, "payload", message))


class Proc:
    """A runnerconf process whose output lines are collected as they come."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, *, cwd: Path = ROOT, command: list[str] | None = None) -> None:
        """``args`` to ``python -m runnerconf``, or the whole ``command`` of another program."""
        self.popen = subprocess.Popen(
            command if command is not None else [sys.executable, "-m", "runnerconf", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [
            threading.Thread(target=self._collect, args=(self.popen.stdout, self.out), daemon=True),
            threading.Thread(target=self._collect, args=(self.popen.stderr, self.err), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _collect(stream, into: list[str]) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            into.append(line.rstrip("\n"))

    def wait_for(self, text: str, *, stream: str = "err", timeout: float = 15) -> None:
        lines = self.err if stream == "err" else self.out
        deadline = time.monotonic() + timeout
        while not any(text in line for line in list(lines)):
            if time.monotonic() > deadline or self.popen.poll() is not None and not self._threads[0].is_alive():
                raise AssertionError(f"{text!r} not seen; stderr:\n" + "\n".join(self.err[-30:]))
            time.sleep(0.02)

    def finish(self, timeout: float = 30) -> int:
        try:
            code = self.popen.wait(timeout=timeout)
        finally:
            if self.popen.poll() is None:
                self.popen.kill()
                self.popen.wait()
            for t in self._threads:
                t.join(timeout=5)
            for stream in (self.popen.stdout, self.popen.stderr):
                if stream is not None:
                    stream.close()
        return code
