"""``CommandWorker``: runs and supervises one process, the way docker compose or supervisord do.

The process gets its own process group (session). A graceful stop sends ``stop_signal`` to the
group and waits ``stop_timeout`` before killing it; a cancel kills it at once; when the main
process exits, whatever it left in its group is killed too. Output lines are logged under the
worker's name (stdout at INFO, stderr at WARNING) and read to the end, so none is lost on exit.

No process outlives the runner: live groups are killed at interpreter exit, by
:func:`reap_process_groups` (which the CLI wraps around ``up``, covering SIGTERM/SIGHUP the runner
does not handle), and, on Linux, each child is also killed by the kernel if the process that
started it dies (``PR_SET_PDEATHSIG``), even by SIGKILL.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import logging
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from runnerconf.workers.base_worker import BaseWorker

__all__ = ["CommandError", "CommandWorker", "kill_all_process_groups", "reap_process_groups"]

logger = logging.getLogger(__name__)

RestartPolicy = Literal["no", "on-failure", "always"]

#: Process groups started by command workers and not yet cleaned up, by pgid.
_LIVE_GROUPS: set[int] = set()

#: Longest output line read as one line; longer ones are logged in pieces.
_LINE_LIMIT = 1 << 20


class CommandError(RuntimeError):
    """A command could not start, or exited with a failure the restart policy does not cover."""

    #: The message says it all; a Python traceback would only point into the supervisor.
    log_traceback = False


def kill_all_process_groups() -> None:
    """SIGKILL every process group a command worker started and has not cleaned up."""
    for pgid in list(_LIVE_GROUPS):
        _killpg(pgid, signal.SIGKILL)
        _LIVE_GROUPS.discard(pgid)


atexit.register(kill_all_process_groups)


@contextlib.contextmanager
def reap_process_groups(signals: Sequence[int] = (signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
    """Kill live process groups when the block ends, and on fatal signals nobody else handles.

    For each of ``signals`` whose handler is the default (the process would die without cleaning
    up), a handler is installed that kills the groups, then dies of the same signal. A runner that
    handles the signal itself overrides this while it runs, and restores it afterwards.
    """
    installed = []
    for sig in signals:
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _die_after_reaping)
            installed.append(sig)
    try:
        yield
    finally:
        kill_all_process_groups()
        for sig in installed:
            signal.signal(sig, signal.SIG_DFL)


def _die_after_reaping(signum: int, frame: Any) -> None:
    kill_all_process_groups()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _killpg(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - pgid reused by someone else's group
        logger.warning("not allowed to signal process group %d", pgid)
        return False
    return True


if sys.platform.startswith("linux"):
    _libc = ctypes.CDLL(None, use_errno=True)

    def _die_with_parent() -> None:
        # Runs in the child between fork and exec: the kernel kills it if its parent dies.
        _libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG

else:  # pragma: no cover
    _die_with_parent = None  # type: ignore[assignment]


def _exit_of(proc: asyncio.subprocess.Process) -> asyncio.Future[None]:
    """A future resolved when ``proc`` itself exits (not waiting for its pipes to close)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    try:
        fd = os.pidfd_open(proc.pid)
    except ProcessLookupError:  # already exited and reaped
        future.set_result(None)
        return future
    except (AttributeError, OSError):  # pragma: no cover - no pidfd: fall back on wait()
        task = asyncio.ensure_future(proc.wait())

        def waited(_: asyncio.Future[int]) -> None:
            if not future.done():
                future.set_result(None)

        task.add_done_callback(waited)
        future.add_done_callback(lambda f: task.cancel())
        return future

    def exited() -> None:
        if not future.done():
            future.set_result(None)

    def close(_: asyncio.Future[None]) -> None:
        loop.remove_reader(fd)
        os.close(fd)

    loop.add_reader(fd, exited)  # a pidfd becomes readable when the process exits
    future.add_done_callback(close)
    return future


def describe_exit(returncode: int) -> str:
    """``code 3`` or ``signal SIGTERM``."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"code {returncode}"


class CommandWorker(BaseWorker):
    """Runs ``command`` as a supervised process.

    Args:
        name: The worker's name (its output is logged under it).
        command: An argv list (run directly) or a string (run through ``/bin/sh -c``).
        cwd: Working directory of the process.
        env: Variables added to (or, without ``inherit_env``, making up) the environment.
        inherit_env: Start from this process's environment.
        stop_signal: Sent to the process group on a graceful stop.
        stop_timeout: Seconds between ``stop_signal`` and SIGKILL.
        restart: ``no``; ``on-failure`` (non-zero exit); ``always`` (any exit).
        max_restarts: Restarts allowed over the worker's life (None: no limit).
        backoff_initial, backoff_max, backoff_factor: Restart delays grow from ``backoff_initial``
            by ``backoff_factor`` up to ``backoff_max``.
        ready_line: A regular expression; the worker is ready once an output line matches it
            (without it: once the process has started).
        ready_timeout: Fail if not ready within this many seconds of the first start.
        depends_on, active: See :class:`BaseWorker`.
    """

    ready_on_start = False

    def __init__(
        self,
        name: str | None,
        command: str | Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        stop_signal: int | str = signal.SIGTERM,
        stop_timeout: float = 10.0,
        restart: RestartPolicy = "no",
        max_restarts: int | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        backoff_factor: float = 2.0,
        ready_line: str | None = None,
        ready_timeout: float | None = None,
        depends_on: Sequence[str] = (),
        active: bool = True,
    ) -> None:
        super().__init__(name, active=active, depends_on=depends_on)
        if isinstance(command, str) and not command.strip() or not isinstance(command, str) and not command:
            raise ValueError(f"worker {self.name!r}: empty command")
        if restart not in ("no", "on-failure", "always"):
            raise ValueError(f"restart must be 'no', 'on-failure' or 'always', not {restart!r}")
        self.command: str | list[str] = command if isinstance(command, str) else [str(a) for a in command]
        self.cwd = os.fspath(cwd) if cwd is not None else None
        self.env = {k: str(v) for k, v in (env or {}).items()}
        self.inherit_env = inherit_env
        self.stop_signal = signal.Signals[stop_signal] if isinstance(stop_signal, str) else signal.Signals(stop_signal)
        self.stop_timeout = stop_timeout
        self.restart = restart
        self.max_restarts = max_restarts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.backoff_factor = backoff_factor
        self.ready_pattern = re.compile(ready_line) if ready_line is not None else None
        self.ready_timeout = ready_timeout
        #: Processes started so far (1 + restarts).
        self.starts = 0
        #: Exit code of the last process (negative: killed by that signal), None while running.
        self.returncode: int | None = None
        #: Process id and process group id of the current process.
        self.pid: int | None = None
        self._proc: asyncio.subprocess.Process | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def main(self) -> None:
        restarts = 0
        ready_deadline = None if self.ready_timeout is None else time.monotonic() + self.ready_timeout
        while True:
            returncode = await self._run_once(ready_deadline)
            if self.stop_requested:
                return
            failed = returncode != 0
            if self.restart == "no" or (self.restart == "on-failure" and not failed):
                if failed:
                    raise CommandError(f"process exited with {describe_exit(returncode)}")
                return
            if self.max_restarts is not None and restarts >= self.max_restarts:
                raise CommandError(
                    f"process exited with {describe_exit(returncode)}; "
                    f"giving up after {restarts} restart{'s' if restarts != 1 else ''}"
                )
            restarts += 1
            delay = min(self.backoff_initial * self.backoff_factor ** (restarts - 1), self.backoff_max)
            limit = "" if self.max_restarts is None else f"/{self.max_restarts}"
            logger.warning(
                "worker %s: process exited with %s; restart %d%s in %.2fs",
                self.name,
                describe_exit(returncode),
                restarts,
                limit,
                delay,
                extra={"event": "command_restart", "worker": self.name, "attempt": restarts, "delay": delay},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wait_for_stop(), delay)
            if self.stop_requested:
                return

    async def _run_once(self, ready_deadline: float | None) -> int:
        proc = await self._spawn()
        pgid = proc.pid
        readers = [
            asyncio.ensure_future(self._pump(proc.stdout, logging.INFO, "stdout")),
            asyncio.ensure_future(self._pump(proc.stderr, logging.WARNING, "stderr")),
        ]
        # proc.wait() also waits for the pipes to close, which a grandchild holding them delays:
        # watch the main process itself, and wait() once its group is gone.
        exited = _exit_of(proc)
        t0 = time.monotonic()
        try:
            stop = asyncio.ensure_future(self.wait_for_stop())
            waits: set[asyncio.Future[Any]] = {exited, stop}
            try:
                while not exited.done():
                    timeout = None
                    if ready_deadline is not None and not self.ready:
                        timeout = max(0.0, ready_deadline - time.monotonic())
                    done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                    if not done:
                        raise CommandError(f"not ready within {self.ready_timeout:g}s (no output line matched)")
                    if stop in done and not exited.done():
                        waits.discard(stop)
                        await self._stop_gracefully(pgid, exited)
            finally:
                stop.cancel()
        finally:
            # Normal exit, failure or cancellation: nothing of this process may survive it.
            _killpg(pgid, signal.SIGKILL)
            _LIVE_GROUPS.discard(pgid)
            exited.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                self.returncode = await asyncio.shield(proc.wait())
            # The pipes are closed now that the whole group is gone: read the last lines, bounded.
            await asyncio.wait(readers, timeout=2.0)
            for r in readers:
                r.cancel()
            self._proc = None
        returncode = proc.returncode
        if returncode is None:  # cancelled again while reaping it (the runner's backstop)
            raise asyncio.CancelledError()
        logger.log(
            logging.INFO if returncode == 0 or self.stop_requested else logging.WARNING,
            "worker %s: process %d exited with %s after %.3fs",
            self.name,
            pgid,
            describe_exit(returncode),
            time.monotonic() - t0,
            extra={"event": "command_exit", "worker": self.name, "pid": pgid, "returncode": returncode},
        )
        return returncode

    async def _spawn(self) -> asyncio.subprocess.Process:
        env = {**os.environ, **self.env} if self.inherit_env else dict(self.env)
        kwargs: dict[str, Any] = dict(
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.cwd,
            env=env,
            start_new_session=True,  # its own process group: signals reach its whole tree
            limit=_LINE_LIMIT,
            preexec_fn=_die_with_parent,
        )
        try:
            if isinstance(self.command, str):
                proc = await asyncio.create_subprocess_shell(self.command, **kwargs)
            else:
                proc = await asyncio.create_subprocess_exec(*self.command, **kwargs)
        except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
            what = self.command if isinstance(self.command, str) else self.command[0]
            where = f" in {self.cwd!r}" if isinstance(exc, NotADirectoryError) or (self.cwd and not os.path.isdir(self.cwd)) else ""
            raise CommandError(f"cannot start {what!r}{where}: {exc.strerror or exc}") from exc
        _LIVE_GROUPS.add(proc.pid)
        self._proc = proc
        self.pid = proc.pid
        self.starts += 1
        self.returncode = None
        logger.info(
            "worker %s: started process %d (%s)",
            self.name,
            proc.pid,
            self.command if isinstance(self.command, str) else shlex.join(self.command),
            extra={"event": "command_start", "worker": self.name, "pid": proc.pid, "start": self.starts},
        )
        if self.ready_pattern is None:
            self.mark_ready()
        return proc

    async def _stop_gracefully(self, pgid: int, exited: asyncio.Future[None]) -> None:
        reason = self.cancel_reason or self.end_reason
        logger.info(
            "worker %s: sending %s to process group %d (%s)", self.name, self.stop_signal.name, pgid, reason
        )
        _killpg(pgid, self.stop_signal)
        try:
            await asyncio.wait_for(asyncio.shield(exited), self.stop_timeout)
        except TimeoutError:
            logger.warning(
                "worker %s: process %d still running %gs after %s; killing it",
                self.name,
                pgid,
                self.stop_timeout,
                self.stop_signal.name,
                extra={"event": "command_kill", "worker": self.name, "pid": pgid},
            )
            _killpg(pgid, signal.SIGKILL)
            await asyncio.shield(exited)

    async def on_cancel(self, reason: str | None) -> None:
        # A cancel does not wait for the process: kill the group now (main() is cancelled next).
        if self._proc is not None and self._proc.returncode is None:
            _killpg(self._proc.pid, signal.SIGKILL)

    async def _pump(self, stream: asyncio.StreamReader | None, level: int, name: str) -> None:
        if stream is None:
            return
        extra = {"event": "command_output", "worker": self.name, "stream": name}
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line longer than the limit: take what there is
                raw = await stream.read(_LINE_LIMIT)
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\r\n")
            logger.log(level, "[%s] %s", self.name, line, extra=extra)
            if self.ready_pattern is not None and not self.ready and self.ready_pattern.search(line):
                logger.info("worker %s is ready (output matched %r)", self.name, self.ready_pattern.pattern)
                self.mark_ready()

    def __repr__(self) -> str:
        pid = f" pid={self.pid}" if self._proc is not None else ""
        return f"<CommandWorker {self.name} {self.state.value}{pid}>"
