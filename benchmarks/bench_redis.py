"""Redis bus figures between two runner processes, next to two floors measured in the same run
on the same (private) redis-server:

* naive: one awaited PUBLISH per message with redis-py's asyncio client (what a bus without
  batching does), received by a plain redis-py subscriber in another process;
* redis-benchmark: PUBLISH with pipelining (-P 64), what the server itself can take.

    python benchmarks/bench_redis.py [--messages 100000] [--latency-messages 2000]

Throughput is end to end: from the first send in this process until the receiving runner process
has handled the last message. Latency is one way, sender to receiving worker, on an idle bus (one
message every 2 ms); both processes read the same clock (time.time_ns) on this machine.
Both are measured for each delivery: pub/sub, Redis Streams, and Streams with signed frames
(the time ratio is against pub/sub in the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from runnerconf.bus import BusDataMessage, BusMessage
from runnerconf.bus.redis import RedisBus
from runnerconf.bus.serializers import JSONMessageSerializer
from runnerconf.bus.serializers.signed import SignedSerializer
from runnerconf.bus.signing import FrameSigner
from runnerconf.workers.base_worker import BaseWorker
from runnerconf.workers.runner import WorkerRunner

CHANNEL = "bench"


MODES = ("pubsub", "stream", "stream+signed")
SECRET = "a-benchmark-secret-of-some-length"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- receiver process ----------------------------------------------------------------------------


class Sink(BaseWorker):
    def __init__(self, expected: int) -> None:
        super().__init__("sink")
        self.expected = expected
        self.count = 0
        self.latencies: list[int] = []
        self.done = asyncio.Event()

    async def on_bus_message(self, message: BusMessage) -> None:
        if type(message) is not BusDataMessage:
            return
        now = time.time_ns()
        self.count += 1
        sent = message.payload.get("t") if isinstance(message.payload, dict) else None
        if sent is not None:
            self.latencies.append(now - sent)
        if self.count == self.expected:
            self.finished_at = now
            self.done.set()


def make_bus(url: str, mode: str, group: str) -> RedisBus:
    """The bus of one side: ``mode`` is pubsub, stream or stream+signed."""
    serializer: Any = JSONMessageSerializer()
    if mode.endswith("+signed"):
        serializer = SignedSerializer(serializer, FrameSigner([SECRET]))
    delivery = mode.split("+")[0]
    return RedisBus(url, channel=f"{CHANNEL}-{mode}", serializer=serializer, delivery=delivery, group=group if delivery == "stream" else None)


async def receive(url: str, expected: int, mode: str) -> None:
    runner = WorkerRunner(name="receiver", bus=make_bus(url, mode, "receiver"), handle_sigint=False)
    sink = Sink(expected)
    await runner.add_workers(sink)

    @runner.event_handler("on_ready")
    def ready(r: WorkerRunner) -> None:
        print("READY", flush=True)

    async def stop_when_done() -> None:
        await sink.done.wait()
        print(json.dumps({"finished_at": sink.finished_at, "latencies": sink.latencies}), flush=True)
        await runner.end()

    asyncio.ensure_future(stop_when_done())
    await runner.run(auto_end=False)


async def naive_receive(url: str, expected: int) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(CHANNEL + "-naive")
    print("READY", flush=True)
    count = 0
    while count < expected:
        item = await pubsub.get_message(timeout=None)
        if item is not None and item["type"] == "message":
            json.loads(item["data"])
            count += 1
    print(json.dumps({"finished_at": time.time_ns()}), flush=True)
    await pubsub.aclose()
    await client.aclose()


# -- sender side (this process) --------------------------------------------------------------------


def start_receiver(role: str, url: str, expected: int, mode: str = "pubsub") -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--role", role, "--url", url, "--expected", str(expected), "--mode", mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "READY", line
    return proc


def result_of(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=300)
    return json.loads(out.strip().splitlines()[-1])


async def bus_throughput(url: str, n: int, mode: str = "pubsub") -> float:
    proc = start_receiver("receiver", url, n, mode)
    runner = WorkerRunner(name="sender", bus=make_bus(url, mode, "sender"), handle_sigint=False)
    task = asyncio.ensure_future(runner.run(auto_end=False))
    await runner.registry.wait_for("sink", timeout=10)
    bus = runner.bus
    t0 = time.time_ns()
    for i in range(n):
        await bus.send(BusDataMessage(source="sender", target="sink", payload={"i": i}))
    finished = (await asyncio.to_thread(result_of, proc))["finished_at"]
    await runner.end()
    await task
    return n / ((finished - t0) / 1e9)


async def bus_latency(url: str, n: int, mode: str = "pubsub") -> list[float]:
    proc = start_receiver("receiver", url, n, mode)
    runner = WorkerRunner(name="sender", bus=make_bus(url, mode, "sender"), handle_sigint=False)
    task = asyncio.ensure_future(runner.run(auto_end=False))
    await runner.registry.wait_for("sink", timeout=10)
    for i in range(n):
        await runner.bus.send(BusDataMessage(source="sender", target="sink", payload={"i": i, "t": time.time_ns()}))
        await asyncio.sleep(0.002)
    latencies = (await asyncio.to_thread(result_of, proc))["latencies"]
    await runner.end()
    await task
    return [x / 1e6 for x in latencies]


async def naive_throughput(url: str, n: int) -> float:
    import redis.asyncio as aioredis

    proc = start_receiver("naive-receiver", url, n)
    client = aioredis.Redis.from_url(url)
    t0 = time.time_ns()
    for i in range(n):
        await client.publish(CHANNEL + "-naive", json.dumps({"type": "BusDataMessage", "fields": {"source": "sender", "target": "sink", "payload": {"i": i}}}))
    finished = (await asyncio.to_thread(result_of, proc))["finished_at"]
    await client.aclose()
    return n / ((finished - t0) / 1e9)


def redis_benchmark(port: int, n: int) -> float:
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return float("nan")
    payload = json.dumps({"v": 1, "from": "x", "messages": [{"type": "BusDataMessage", "fields": {"source": "s", "payload": {"i": 1}}}]})
    out = subprocess.run(
        [binary, "-h", "127.0.0.1", "-p", str(port), "-n", str(n), "-P", "64", "-q", "PUBLISH", CHANNEL + "-rb", payload],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(r"([\d.]+) requests per second", out.replace(",", ""))
    return float(m.group(1)) if m else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--naive-messages", type=int, default=20_000)
    parser.add_argument("--latency-messages", type=int, default=2_000)
    parser.add_argument("--role", choices=["receiver", "naive-receiver"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--expected", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="pubsub", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs for each bus figure")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    if args.role == "receiver":
        asyncio.run(receive(args.url, args.expected, args.mode))
        return
    if args.role == "naive-receiver":
        asyncio.run(naive_receive(args.url, args.expected))
        return

    server_bin = shutil.which("redis-server")
    if server_bin is None:
        sys.exit("redis-server is not installed")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [server_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.3)
            url = f"redis://127.0.0.1:{port}/0"
            naive = asyncio.run(naive_throughput(url, args.naive_messages))
            server_rate = redis_benchmark(port, 200_000)
            rates = {m: max(asyncio.run(bus_throughput(url, args.messages, m)) for _ in range(args.runs)) for m in MODES}
            lats = {m: sorted(asyncio.run(bus_latency(url, args.latency_messages, m))) for m in MODES}
        finally:
            server.terminate()
            server.wait()
    bus = rates["pubsub"]
    print(f"Redis bus between two runner processes (redis-server {port}, {os.cpu_count()} cores; best of {args.runs})")
    print(f"  naive loop, 1 PUBLISH per message ({args.naive_messages:,} msgs):  {naive:>12,.0f} msg/s   (floor)")
    print(f"  redis-benchmark PUBLISH -P 64 (200,000 msgs):        {server_rate:>12,.0f} msg/s   (server ceiling)")
    print(f"  RedisBus end to end ({args.messages:,} msgs):              {bus:>12,.0f} msg/s")
    print(f"    = {bus / naive:.1f}x the naive loop, {bus / server_rate:.2f}x redis-benchmark's rate")
    print("  by delivery, end to end and one-way latency on an idle bus (a message every 2 ms):")
    print(f"    {'mode':<15} {'msg/s':>10} {'time/pubsub':>12} {'p50 ms':>8} {'p99 ms':>8}")
    for m in MODES:
        lat = lats[m]
        p50, p99 = statistics.median(lat), lat[int(len(lat) * 0.99) - 1]
        print(f"    {m:<15} {rates[m]:>10,.0f} {bus / rates[m]:>11.2f}x {p50:>8.3f} {p99:>8.3f}")


if __name__ == "__main__":
    main()
