"""``CommandWorker``: runs and supervises one process, the way docker compose or supervisord do.

The process runs in a session of its own, under a keeper (see :mod:`runnerconf.workers.keeper`)
that adopts every process the command starts, however it detaches. A graceful stop sends
``stop_signal`` to the command and waits ``stop_timeout`` for its whole tree to exit before killing
what is left; a cancel kills the tree at once; when the main process exits by itself, whatever it
started is killed too. Output lines are logged under the worker's name (stdout at INFO, stderr at
WARNING) and read to the end, so none is lost on exit. An optional health check probes the
process; an unhealthy one is restarted per the restart policy.

No process of a command outlives ``up``: live trees are killed at interpreter exit, by
:func:`~runnerconf.workers.processes.reap_process_groups` (which the CLI wraps around ``up``,
covering SIGTERM/SIGHUP the runner does not handle), and, on Linux, by the keeper when ``up`` dies,
even by SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import signal
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from runnerconf.workers.base_worker import BaseWorker
from runnerconf.workers.health import HealthCheck, probe
from runnerconf.workers.processes import (
    KILL_ALL,
    USE_KEEPER,
    die_with_parent,
    keeper_argv,
    kill_all_trees,
    kill_tree,
    reap_process_groups,
    signal_group,
    track,
    untrack,
)

__all__ = ["CommandError", "CommandWorker", "describe_exit", "kill_all_process_groups", "reap_process_groups"]

logger = logging.getLogger(__name__)

RestartPolicy = Literal["no", "on-failure", "always"]

#: Longest output line read as one line; longer ones are logged in pieces.
_LINE_LIMIT = 1 << 20
#: How long a killed tree gets to be gone before the group is killed as a backstop.
_KILL_GRACE = 2.0
_START_FAILURE = "runnerconf: cannot start "

#: Older name of :func:`~runnerconf.workers.processes.kill_all_trees`.
kill_all_process_groups = kill_all_trees


class CommandError(RuntimeError):
    """A command could not start, or exited with a failure the restart policy does not cover."""

    #: The message says it all; a Python traceback would only point into the supervisor.
    log_traceback = False


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
        stop_signal: Sent to the command on a graceful stop.
        stop_timeout: Seconds the whole tree gets, after ``stop_signal``, before SIGKILL.
        restart: ``no``; ``on-failure`` (non-zero exit, or unhealthy); ``always`` (any exit).
        max_restarts: Restarts allowed over the worker's life (None: no limit).
        backoff_initial, backoff_max, backoff_factor: Restart delays grow from ``backoff_initial``
            by ``backoff_factor`` up to ``backoff_max``.
        ready_line: A regular expression; the worker is ready once an output line matches it
            (without it: once the health check passes, or else once the process has started).
        ready_timeout: Fail if not ready within this many seconds of the first start.
        healthcheck: Probe the process (see :class:`~runnerconf.workers.health.HealthCheck`).
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
        healthcheck: HealthCheck | None = None,
        depends_on: Sequence[str] = (),
        active: bool = True,
    ) -> None:
        super().__init__(name, active=active, depends_on=depends_on)
        if isinstance(command, str) and not command.strip() or not isinstance(command, str) and not command:
            raise ValueError(f"worker {self.name!r}: empty command")
        if restart not in ("no", "on-failure", "always"):
            raise ValueError(f"restart must be 'no', 'on-failure' or 'always', not {restart!r}")
        if not (stop_timeout >= 0 and backoff_initial >= 0 and backoff_max >= 0 and backoff_factor >= 1):
            raise ValueError("stop_timeout and backoff delays must be >= 0, backoff_factor >= 1")
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
        self.healthcheck = healthcheck
        #: Processes started so far (1 + restarts).
        self.starts = 0
        #: Restarts so far.
        self.restarts = 0
        #: Exit code of the last process (negative: killed by that signal), None while running.
        self.returncode: int | None = None
        #: Process id of the current process (of its keeper on Linux); also its process group.
        self.pid: int | None = None
        #: True once the health check passed, False once it failed, None before (or without one).
        self.healthy: bool | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._unhealthy: str | None = None
        self._start_error: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def next_delay(self, previous: float | None) -> float:
        """The delay before the next restart: ``initial``, then times ``factor``, at most ``max``.

        Computed step by step (never as a power), so restarting for ever never overflows.
        """
        if previous is None:
            return min(self.backoff_initial, self.backoff_max)
        return min(previous * self.backoff_factor, self.backoff_max)

    async def main(self) -> None:
        delay: float | None = None
        ready_deadline = None if self.ready_timeout is None else time.monotonic() + self.ready_timeout
        while True:
            returncode = await self._run_once(ready_deadline)
            if self.stop_requested:
                return
            if self._start_error is not None:
                raise CommandError(self._start_error)
            why = f"unhealthy ({self._unhealthy})" if self._unhealthy else f"exited with {describe_exit(returncode)}"
            failed = returncode != 0 or self._unhealthy is not None
            if self.restart == "no" or (self.restart == "on-failure" and not failed):
                if failed:
                    raise CommandError(f"process {why}")
                return
            if self.max_restarts is not None and self.restarts >= self.max_restarts:
                n = self.restarts
                raise CommandError(f"process {why}; giving up after {n} restart{'s' if n != 1 else ''}")
            self.restarts += 1
            delay = self.next_delay(delay)
            limit = "" if self.max_restarts is None else f"/{self.max_restarts}"
            logger.warning(
                "worker %s: process %s; restart %d%s in %.2fs",
                self.name,
                why,
                self.restarts,
                limit,
                delay,
                extra={**self._log_fields("command_restart"), "attempt": self.restarts, "delay": delay},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wait_for_stop(), delay)
            if self.stop_requested:
                return

    async def _run_once(self, ready_deadline: float | None) -> int:
        self._unhealthy = None
        proc = await self._spawn()
        pid = proc.pid
        readers = [
            asyncio.ensure_future(self._pump(proc.stdout, logging.INFO, "stdout")),
            asyncio.ensure_future(self._pump(proc.stderr, logging.WARNING, "stderr")),
        ]
        # proc.wait() also waits for the pipes to close, which a process holding them delays:
        # watch the process itself, and wait() once its tree is gone.
        exited = _exit_of(proc)
        health = asyncio.ensure_future(self._watch_health(pid)) if self.healthcheck is not None else None
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
                        what = "no output line matched" if self.ready_pattern is not None else "the health check did not pass"
                        raise CommandError(f"not ready within {self.ready_timeout:g}s ({what})")
                    if stop in done and not exited.done():
                        waits.discard(stop)
                        await self._stop_gracefully(pid, exited)
            finally:
                stop.cancel()
                if health is not None:
                    health.cancel()
        finally:
            # Normal exit, failure or cancellation: nothing of this process may survive it.
            if not exited.done():
                await self._kill(pid, exited)
            signal_group(pid, signal.SIGKILL)
            untrack(pid)
            exited.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                self.returncode = await asyncio.shield(proc.wait())
            # The pipes are closed now that the whole tree is gone: read the last lines, bounded.
            await asyncio.wait(readers, timeout=2.0)
            for r in readers:
                r.cancel()
            self._proc = None
        returncode = proc.returncode
        if returncode is None:  # cancelled again while reaping it (the runner's backstop)
            raise asyncio.CancelledError()
        if returncode == -KILL_ALL:
            # Killed before its keeper was ready to take the signal: killed, as SIGKILL would.
            returncode = self.returncode = -signal.SIGKILL
        logger.log(
            logging.INFO if returncode == 0 or self.stop_requested else logging.WARNING,
            "worker %s: process %d exited with %s after %.3fs",
            self.name,
            pid,
            describe_exit(returncode),
            time.monotonic() - t0,
            extra={**self._log_fields("command_exit"), "pid": pid, "returncode": returncode},
        )
        return returncode

    async def _spawn(self) -> asyncio.subprocess.Process:
        env = {**os.environ, **self.env} if self.inherit_env else dict(self.env)
        argv = ["/bin/sh", "-c", self.command] if isinstance(self.command, str) else self.command
        self._start_error = None
        try:
            proc = await asyncio.create_subprocess_exec(
                *keeper_argv(argv),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.cwd,
                env=env,
                start_new_session=True,  # a session of its own: signals reach its whole group
                limit=_LINE_LIMIT,
                preexec_fn=die_with_parent,
            )
        except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
            what = argv[0] if not isinstance(self.command, str) else self.command
            where = f" in {self.cwd!r}" if isinstance(exc, NotADirectoryError) or (self.cwd and not os.path.isdir(self.cwd)) else ""
            raise CommandError(f"cannot start {what!r}{where}: {exc.strerror or exc}") from exc
        track(proc.pid)
        self._proc = proc
        self.pid = proc.pid
        self.starts += 1
        self.returncode = None
        self.healthy = None
        logger.info(
            "worker %s: started process %d (%s)",
            self.name,
            proc.pid,
            self.command if isinstance(self.command, str) else shlex.join(self.command),
            extra={**self._log_fields("command_start"), "pid": proc.pid, "start": self.starts},
        )
        if self.ready_pattern is None and self.healthcheck is None:
            await self.mark_ready()
        return proc

    async def _stop_gracefully(self, pid: int, exited: asyncio.Future[None]) -> None:
        reason = self.cancel_reason or self.end_reason
        logger.info("worker %s: sending %s to process group %d (%s)", self.name, self.stop_signal.name, pid, reason)
        signal_group(pid, self.stop_signal)
        try:
            # The keeper exits once the whole tree has: the grace period is the tree's, not only
            # the main process's (a shell that dies at once does not cut the program's cleanup).
            await asyncio.wait_for(asyncio.shield(exited), self.stop_timeout)
        except TimeoutError:
            logger.warning(
                "worker %s: process %d still running %gs after %s; killing it",
                self.name,
                pid,
                self.stop_timeout,
                self.stop_signal.name,
                extra={**self._log_fields("command_kill"), "pid": pid},
            )
            await self._kill(pid, exited)

    async def _kill(self, pid: int, exited: asyncio.Future[None]) -> None:
        kill_tree(pid)
        try:
            await asyncio.wait_for(asyncio.shield(exited), _KILL_GRACE)
        except TimeoutError:
            signal_group(pid, signal.SIGKILL)  # the keeper itself does not answer

    async def on_cancel(self, reason: str | None) -> None:
        # A cancel does not wait for the process: kill its tree now (main() is cancelled next).
        if self._proc is not None and self._proc.returncode is None:
            kill_tree(self._proc.pid)

    async def _watch_health(self, pid: int) -> None:
        check = self.healthcheck
        assert check is not None
        env = {**os.environ, **self.env} if self.inherit_env else dict(self.env)
        started = time.monotonic()
        failures = 0
        while True:
            reason = await probe(check, cwd=self.cwd, env=env)
            in_start_period = time.monotonic() - started < check.start_period
            if reason is None:
                failures = 0
                if self.healthy is not True:
                    logger.info("worker %s is healthy (%s)", self.name, check.describe(), extra={**self._log_fields("command_healthy")})
                    self.healthy = True
                    self.worker_runner._worker_healthy(self)
                if self.ready_pattern is None:
                    await self.mark_ready()
            elif not in_start_period:
                failures += 1
                logger.warning(
                    "worker %s: health check failed (%d/%d): %s",
                    self.name,
                    failures,
                    check.retries,
                    reason,
                    extra={**self._log_fields("command_unhealthy"), "failures": failures},
                )
                if failures >= check.retries:
                    self.healthy = False
                    self._unhealthy = reason
                    kill_tree(pid)  # the exit is then handled as a failure (restart policy)
                    return
            await asyncio.sleep(check.interval)

    async def _pump(self, stream: asyncio.StreamReader | None, level: int, name: str) -> None:
        if stream is None:
            return
        extra = {**self._log_fields("command_output"), "stream": name}
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line longer than the limit: take what there is
                raw = await stream.read(_LINE_LIMIT)
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\r\n")
            if name == "stderr" and USE_KEEPER and line.startswith(_START_FAILURE) and self._start_error is None:
                self._start_error = line[len("runnerconf: ") :]
            logger.log(level, "[%s] %s", self.name, line, extra=extra)
            if self.ready_pattern is not None and not self.ready and self.ready_pattern.search(line):
                logger.info("worker %s is ready (output matched %r)", self.name, self.ready_pattern.pattern)
                await self.mark_ready()

    def __repr__(self) -> str:
        pid = f" pid={self.pid}" if self._proc is not None else ""
        return f"<CommandWorker {self.name} {self.state.value}{pid}>"
