"""A stand-in bot for configs/processes.yaml: sends a few messages through the relay, then exits."""

import argparse
import time

parser = argparse.ArgumentParser()
parser.add_argument("--messages", type=int, default=3)
parser.add_argument("--relay-port", type=int, default=7861)
args = parser.parse_args()

for i in range(1, args.messages + 1):
    print(f"bot: message {i}/{args.messages} via relay port {args.relay_port}", flush=True)
    time.sleep(0.05)
print("bot: done", flush=True)
