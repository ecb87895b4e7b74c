"""A command that leaves processes behind in every way a program can, for the keeper's tests.

    tree.py MODE PIDFILE [--stay]

MODE: ``setsid`` (a grandchild in a session of its own), ``daemon`` (a double-forked daemon),
``stdout`` (a grandchild holding our stdout open). The leftover's pid goes to PIDFILE; then we
print "spawned" and exit at once, or with --stay keep running until killed.
"""

import os
import subprocess
import sys
import time

mode, pidfile = sys.argv[1], sys.argv[2]
stay = "--stay" in sys.argv

if mode == "setsid":
    child = subprocess.Popen(["sleep", "300"], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = child.pid
elif mode == "stdout":
    child = subprocess.Popen(["sleep", "300"])  # inherits our stdout and stderr
    pid = child.pid
elif mode == "daemon":
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.close(r)
            for fd in (0, 1, 2):
                os.close(fd)
            os.write(w, str(os.getpid()).encode())
            os.close(w)
            time.sleep(300)
            os._exit(0)
        os._exit(0)
    os.close(w)
    pid = int(os.read(r, 32))
    os.wait()
else:
    raise SystemExit(f"unknown mode {mode}")

with open(pidfile, "w") as fh:
    fh.write(str(pid))
print("spawned", flush=True)
if stay:
    while True:
        time.sleep(1)
