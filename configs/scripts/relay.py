"""A stand-in media relay for configs/processes.yaml: says it listens, beats until SIGTERM."""

import argparse
import signal
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=7861)
args = parser.parse_args()

stopping = False


def stop(signum, frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
print(f"relay: listening on 127.0.0.1:{args.port}", flush=True)
beats = 0
while not stopping:
    time.sleep(0.05)
    beats += 1
    if beats % 20 == 0:
        print(f"relay: {beats // 20}s up", flush=True)
print("relay: SIGTERM received, closing sessions", flush=True)
print("relay: bye", file=sys.stderr, flush=True)
