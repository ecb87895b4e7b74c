"""Two agents take turns on one call: the greeter hands the call to support by activation.

Only the active agent is handed what the caller says (an inactive worker takes nothing but
activations, deactivations, ends and cancels). Run it with ``runnerconf up examples/handoff.yaml``.
"""

from runnerconf.bus import BusDataMessage
from runnerconf.workers.base_worker import BaseWorker, WorkerActivationArgs


class Caller(BaseWorker):
    """Says each line to whichever agent is active, and waits for the answer before the next."""

    def __init__(self, name=None, *, lines):
        super().__init__(name)
        self._lines = list(lines)
        self._answered = None

    async def main(self):
        import asyncio

        for line in self._lines:
            self._answered = asyncio.get_running_loop().create_future()
            print(f"caller: {line}", flush=True)
            await self.broadcast(line)
            await asyncio.wait_for(self._answered, 5)
        await self.end(reason="call over")

    async def on_bus_message(self, message):
        await super().on_bus_message(message)
        if type(message) is BusDataMessage and message.target == self.name and not self._answered.done():
            self._answered.set_result(message.payload)


class Greeter(BaseWorker):
    async def on_worker_ready(self, data):
        print(f"greeter: {data.worker_name} is ready on {data.runner}", flush=True)

    async def on_bus_message(self, message):
        await super().on_bus_message(message)
        if type(message) is not BusDataMessage or message.source != "caller":
            return
        if "help" in message.payload:
            args = WorkerActivationArgs(metadata={"topic": message.payload})
            await self.activate_worker("support", args=args, deactivate_self=True)
            await self.send("caller", "greeter: let me pass you to support")
        else:
            await self.send("caller", f"greeter: hello! you said {message.payload!r}")
        print(f"greeter answered (active: {self.active})", flush=True)


class Support(BaseWorker):
    async def on_activated(self, args):
        await super().on_activated(args)
        if args:
            print(f"support: taking the call about {args['metadata']['topic']!r}", flush=True)

    async def on_bus_message(self, message):
        await super().on_bus_message(message)
        if type(message) is BusDataMessage and message.source == "caller":
            await self.send("caller", f"support: sorted, about {message.payload!r}")
            print("support answered", flush=True)
