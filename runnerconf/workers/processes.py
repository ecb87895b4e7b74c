"""Process trees of supervised commands: starting them under a keeper, and killing them whole.

On Linux every command runs under :mod:`runnerconf.workers.keeper` (a child subreaper with a
parent-death signal), in a session of its own; elsewhere the command runs directly in its own
session. This module is ``up``'s side of that: it knows the live trees, stops and kills them, and
makes sure none outlives the process (at interpreter exit, on fatal signals nobody handles, and --
through the keeper -- even on SIGKILL).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "KEEPER",
    "KILL_ALL",
    "USE_KEEPER",
    "descendants",
    "group_alive",
    "kill_all_trees",
    "kill_tree",
    "keeper_argv",
    "reap_process_groups",
    "signal_group",
    "track",
    "untrack",
]

logger = logging.getLogger(__name__)

KEEPER = Path(__file__).with_name("keeper.py")
#: The keeper needs prctl(2) (child subreaper, parent-death signal): Linux only.
USE_KEEPER = sys.platform.startswith("linux")
#: The keeper's "kill the whole tree" signal (see :mod:`runnerconf.workers.keeper`).
KILL_ALL = signal.SIGRTMIN + 1 if USE_KEEPER else signal.SIGKILL

#: Live command trees: the pid of each keeper (also its process group and session id).
_LIVE: set[int] = set()


def keeper_argv(argv: Sequence[str]) -> list[str]:
    """The argv that runs ``argv`` under the keeper (``argv`` itself where there is none)."""
    if not USE_KEEPER:
        return list(argv)
    return [sys.executable, "-I", "-S", str(KEEPER), *argv]


def track(pid: int) -> None:
    """Remember a live tree (killed at exit if still there)."""
    _LIVE.add(pid)


def untrack(pid: int) -> None:
    _LIVE.discard(pid)


def descendants(root: int) -> list[int]:
    """Every live (not zombie) process below ``root``, from /proc (empty where there is none)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        rest = stat[stat.rindex(b")") + 2 :].split()
        if rest[0] in (b"Z", b"X"):
            continue
        children.setdefault(int(rest[1]), []).append(int(entry))
    found: list[int] = []
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), ()):
            found.append(pid)
            todo.append(pid)
    return found


def group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is in process group ``pgid``."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        try:
            os.killpg(pgid, 0)
        except OSError:
            return False
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        rest = stat[stat.rindex(b")") + 2 :].split()
        if int(rest[2]) == pgid and rest[0] not in (b"Z", b"X"):
            return True
    return False


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False if it is gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - pgid reused by someone else's group
        logger.warning("not allowed to signal process group %d", pgid)
        return False
    return True


def kill_tree(pid: int) -> None:
    """SIGKILL the whole tree of the command whose keeper (or process) is ``pid``.

    What is visible now is killed here; the keeper is told to kill the rest (what forks meanwhile)
    and then exits by itself once its tree is gone. Without a keeper, the session's group is killed.
    """
    for child in descendants(pid):
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)
    if USE_KEEPER:
        with contextlib.suppress(OSError):
            os.kill(pid, KILL_ALL)
    else:  # pragma: no cover - no keeper
        signal_group(pid, signal.SIGKILL)


def kill_all_trees() -> None:
    """Kill every live command tree (interpreter exit, fatal signals)."""
    for pid in list(_LIVE):
        kill_tree(pid)
        _LIVE.discard(pid)


atexit.register(kill_all_trees)


@contextlib.contextmanager
def reap_process_groups(signals: Sequence[int] = (signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
    """Kill live command trees when the block ends, and on fatal signals nobody else handles.

    For each of ``signals`` whose handler is the default (the process would die without cleaning
    up), a handler is installed that kills the trees, then dies of the same signal. A runner that
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
        kill_all_trees()
        for sig in installed:
            signal.signal(sig, signal.SIG_DFL)


def _die_after_reaping(signum: int, frame: Any) -> None:
    kill_all_trees()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


if USE_KEEPER:
    _libc = ctypes.CDLL(None, use_errno=True)

    def die_with_parent() -> None:
        """In the child, between fork and exec: the kernel kills it if its parent dies (until
        the keeper arms its own parent-death signal)."""
        _libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG

else:  # pragma: no cover
    die_with_parent = None  # type: ignore[assignment]
