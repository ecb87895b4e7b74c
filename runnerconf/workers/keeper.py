"""The keeper: a small parent between ``runnerconf up`` and each supervised command (Linux).

Run as ``python -I -S keeper.py PROGRAM [ARG...]`` by :class:`~runnerconf.workers.command.CommandWorker`
(it imports nothing of runnerconf, so it starts in milliseconds). It makes sure no process the
command starts outlives it:

* it is a *child subreaper*: every orphan of the command's tree (a ``setsid`` grandchild, a
  double-forked daemon) becomes its child, so it can always find and reap them;
* when the command's main process exits by itself, whatever it left behind is killed at once;
* a stop signal (SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) is passed on to every
  process of the tree, and the keeper waits until they have all exited: the main process exiting
  early does not cut the others' grace period (``up`` decides when it is over);
* ``KILL_ALL`` (sent by ``up`` when the grace period is over) kills the whole tree;
* the death of ``up`` itself, even by SIGKILL, reaches the keeper as ``KILL_ALL`` (a parent-death
  signal), so the tree goes with it.

The keeper exits with the main process's status (killed by signal N: it kills itself with N).
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
#: Sent by ``up`` (and by the kernel when ``up`` dies): kill the whole tree now.
KILL_ALL = signal.SIGRTMIN + 1
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)

_state = {"stopping": False, "killing": False}


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
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


def signal_tree(sig: int, *, outside_group: bool = False) -> None:
    group = os.getpgid(0)
    for pid in descendants(os.getpid()):
        try:
            if outside_group and os.getpgid(pid) == group:
                continue
            os.kill(pid, sig)
        except OSError:
            pass


def on_stop(signum: int, frame: object) -> None:
    # ``up`` signals the process group; pass the signal on to the processes of the tree that left
    # the group (setsid, daemons), and only to them: the others must not get it twice.
    _state["stopping"] = True
    signal_tree(signum, outside_group=True)


def on_kill_all(signum: int, frame: object) -> None:
    _state["killing"] = True
    signal_tree(signal.SIGKILL)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: keeper.py PROGRAM [ARG...]", file=sys.stderr)
        return 2
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    signal.signal(KILL_ALL, on_kill_all)
    libc.prctl(PR_SET_PDEATHSIG, KILL_ALL, 0, 0, 0)
    for sig in FORWARDED:
        signal.signal(sig, on_stop)
    if os.getppid() != parent:  # up died before the parent-death signal was armed
        return 128 + signal.SIGKILL
    errors_r, errors_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(errors_r)
            os.set_inheritable(errors_w, False)
            for sig in (*FORWARDED, KILL_ALL):
                signal.signal(sig, signal.SIG_DFL)
            os.execvp(argv[0], argv)
        except OSError as exc:
            os.write(errors_w, f"{exc.strerror or exc}".encode())
        os._exit(127)
    os.close(errors_w)
    with os.fdopen(errors_r, "rb") as fh:
        failure = fh.read()  # empty once exec succeeded (the pipe closes on exec)
    if failure:
        print(f"runnerconf: cannot start {argv[0]!r}: {failure.decode(errors='replace')}", file=sys.stderr, flush=True)
    status = None
    while True:
        try:
            child, raw = os.wait()
        except ChildProcessError:
            break  # nothing left of the tree
        if child == pid:
            status = raw
            if not _state["stopping"] and not _state["killing"]:
                # The command ended by itself: what it leaves behind goes with it.
                signal_tree(signal.SIGKILL)
    if status is None:
        return 128 + signal.SIGKILL
    if os.WIFSIGNALED(status):
        # Die of the same signal, so that up sees what the main process died of.
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        libc.prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0)
        os.kill(os.getpid(), sig)
        return 128 + sig
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
