"""Ending runners from outside: what ``runnerconf down`` does over a network bus.

It speaks the runners' own registry protocol: it says hello (every runner answers with its
roster, so we learn who is up), sends an end (or a cancel) to every runner, then waits for each to
say it left.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from runnerconf.bus.bus import WorkerBus
from runnerconf.bus.messages import BusCancelMessage, BusEndMessage, BusMessage, BusWorkerRegistryMessage
from runnerconf.utils.asyncio.waiting import wait_until
from runnerconf.workers.exchange import RUNNERS

__all__ = ["DownResult", "stop_runners"]

logger = logging.getLogger(__name__)


@dataclass
class DownResult:
    """Which runners answered, and which of them left before the timeout."""

    found: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    #: Runners asked to stop that never say when they have: pipecat-ai's own (``wire: pipecat``).
    unconfirmed: list[str] = field(default_factory=list)

    @property
    def still_running(self) -> list[str]:
        return [r for r in self.found if r not in self.stopped and r not in self.unconfirmed]


class _Listener:
    def __init__(self, name: str) -> None:
        self.name = name
        self.answered: list[str] = []
        #: Runners that answered with a whole roster: runnerconf's, which say goodbye when they stop.
        self.ours: set[str] = set()
        self.left: set[str] = set()
        self.changed = asyncio.Event()

    async def on_bus_message(self, message: BusMessage) -> None:
        if not isinstance(message, BusWorkerRegistryMessage) or message.runner == self.name:
            return
        if message.left:
            self.left.add(message.runner)
        else:
            if message.runner not in self.answered:
                self.answered.append(message.runner)
            if message.full:
                self.ours.add(message.runner)
        self.changed.set()


async def stop_runners(
    bus: WorkerBus,
    *,
    cancel: bool = False,
    runners: Sequence[str] = (),
    expected: Sequence[str] = (),
    reason: str | None = None,
    discover: float = 5.0,
    timeout: float = 30.0,
) -> DownResult:
    """End (or cancel) the runners on ``bus`` and wait until they have left.

    Args:
        cancel: Cancel instead of ending gracefully.
        runners: Only these runners (default: every runner on the bus).
        expected: Runner names the topology declares; discovery stops early once all answered.
        reason: Given to the runners' end/cancel.
        discover: Longest wait for runners to answer the hello (a runner busy reading a flood, or
            many runners, may answer late); it ends as soon as every ``expected`` runner answered.
        timeout: Longest wait for them to leave.
    """
    me = f"runnerconf-down-{uuid.uuid4().hex[:8]}"
    wanted = set(runners or expected)
    listener = _Listener(me)
    await bus.subscribe(listener, groups=(RUNNERS,))  # runners announce their leaving to the group
    await bus.start()
    try:
        await bus.send(BusWorkerRegistryMessage(source=me, target=RUNNERS, runner=me, hello=True, full=True))
        await wait_until(listener.changed, lambda: bool(wanted) and wanted <= set(listener.answered), discover)
        targets = [r for r in listener.answered if not runners or r in runners]
        kind = BusCancelMessage if cancel else BusEndMessage
        for name in targets:
            logger.info("asking runner %s to %s", name, "cancel" if cancel else "end")
            await bus.send(kind(source=me, target=name, reason=reason or f"runnerconf down{' --cancel' if cancel else ''}"))
        # A pipecat runner (it answered with a registry, not a roster) takes the end, but never
        # says it has stopped: it is not waited for.
        confirming = {r for r in targets if r in listener.ours}
        await wait_until(listener.changed, lambda: confirming <= listener.left, timeout)
        return DownResult(
            found=targets,
            stopped=[r for r in targets if r in listener.left],
            unconfirmed=[r for r in targets if r not in confirming and r not in listener.left],
        )
    finally:
        await bus.send(BusWorkerRegistryMessage(source=me, target=RUNNERS, runner=me, full=True, left=True))
        await bus.unsubscribe(listener)
        await bus.stop()
