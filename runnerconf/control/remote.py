"""``apply`` and ``ps`` over a network bus: a control agent in each ``up`` process, and the
clients the commands use.

The agent is one more subscriber of the runners' group (``@runners``) on the bus. It answers

* :class:`BusStatusRequestMessage` with one :class:`BusStatusReplyMessage` per runner it runs;
* :class:`BusApplyRequestMessage` (a revision: its id, its content, its bus fingerprint), on a
  signed bus only (a revision names code to import and call), by checking that the id is the
  hash of the content, then applying to each runner it runs the
  part of the revision for that runner's name, and answering with a
  :class:`BusApplyReplyMessage` per runner. A revision without a runner of that name, or
  whose hash does not match, is refused and changes nothing.

On a signed bus (``bus.secret``), only holders of the secret can send these; on an unsigned one,
status is answered and revisions are refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from runnerconf.bus.bus import WorkerBus
from runnerconf.bus.messages import BusMessage, BusSystemMessage
from runnerconf.bus.wire import register_message_type
from runnerconf.config.errors import TopologyError
from runnerconf.config.revision import Revision
from runnerconf.control.controller import Controller
from runnerconf.utils.asyncio.waiting import wait_until
from runnerconf.workers.exchange import RUNNERS

__all__ = [
    "BusApplyReplyMessage",
    "BusApplyRequestMessage",
    "BusStatusReplyMessage",
    "BusStatusRequestMessage",
    "ControlAgent",
    "apply_revision",
    "ask_status",
]

logger = logging.getLogger("runnerconf.control")

#: Status and apply requests answered per second by one process (a flood is dropped).
MAX_REQUESTS_PER_SECOND = 20


@dataclass(kw_only=True, slots=True)
class BusStatusRequestMessage(BusSystemMessage):
    """``runnerconf ps`` asks every runner what it runs."""


@dataclass(kw_only=True, slots=True)
class BusStatusReplyMessage(BusSystemMessage):
    """One runner's status (see :meth:`Controller.status`)."""

    status: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True, slots=True)
class BusApplyRequestMessage(BusSystemMessage):
    """A revision for the runners (``runners``: only those; empty: every runner of it)."""

    revision: str
    content: str
    bus_fingerprint: str
    git: str | None = None
    runners: list[str] = field(default_factory=list)


@dataclass(kw_only=True, slots=True)
class BusApplyReplyMessage(BusSystemMessage):
    """What applying a revision did on one runner (see :class:`ApplyOutcome`)."""

    runner: str
    revision: str
    ok: bool
    outcome: dict[str, Any] = field(default_factory=dict)


for _cls in (BusStatusRequestMessage, BusStatusReplyMessage, BusApplyRequestMessage, BusApplyReplyMessage):
    register_message_type(_cls)


class ControlAgent:
    """Answers status and apply requests for the runners of one process (see the module doc)."""

    def __init__(self, controller: Controller, topology_file: str) -> None:
        self.controller = controller
        self.topology_file = topology_file
        names = "+".join(r.name for r in controller.runners)
        self.name = f"{names}@control-{uuid.uuid4().hex[:6]}"
        self._tasks: set[asyncio.Task[Any]] = set()
        self._window = (0.0, 0)  # (start of the current second, requests answered in it)
        self._refused = 0

    def _allow(self) -> bool:
        """At most :data:`MAX_REQUESTS_PER_SECOND` requests answered a second; the rest are
        dropped (and counted in the log once a second)."""
        now = time.monotonic()
        start, count = self._window
        if now - start >= 1.0:
            if self._refused:
                logger.warning("control: %d status/apply request(s) dropped in the last second (too many)", self._refused)
                self._refused = 0
            self._window = (now, 1)
            return True
        if count >= MAX_REQUESTS_PER_SECOND:
            self._refused += 1
            return False
        self._window = (start, count + 1)
        return True

    async def attach(self, bus: WorkerBus) -> None:
        self.bus = bus
        await bus.subscribe(self, groups=(RUNNERS,))

    async def on_bus_message(self, message: BusMessage) -> None:
        if isinstance(message, BusStatusRequestMessage):
            if not self._allow():
                return  # a flood of requests must not become a flood of (big) answers
            for status in self.controller.status():
                await self.bus.send(BusStatusReplyMessage(source=self.name, target=message.source, status=status))
        elif isinstance(message, BusApplyRequestMessage):
            if not self._allow():
                return
            # Applying takes a while (graceful stops): never hold up this subscriber's queue.
            task = asyncio.ensure_future(self._apply(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _apply(self, message: BusApplyRequestMessage) -> None:
        controller = self.controller
        revision = Revision(message.revision, message.content, message.bus_fingerprint, message.git)
        mine = [r for r in controller.runners if not message.runners or controller.spec_name(r) in message.runners]
        if not mine:
            return
        error = None
        topology = None
        if not getattr(controller.topology.bus, "signed", False):
            # A revision names classes and factories to import and call: only holders of the
            # bus secret may send one, or anyone on the channel could run code here.
            error = "apply needs a signed bus (bus.secret): refused"
        elif not revision.verify():
            error = f"revision {message.revision} does not match its content (refused)"
        else:
            try:
                from runnerconf.config.loader import topology_from_document

                topology = topology_from_document(json.loads(message.content), file=self.topology_file)
            except (ValueError, TopologyError) as exc:
                problems = getattr(exc, "problems", None)
                error = f"revision {message.revision} is not a valid topology: " + (
                    "; ".join(str(p) for p in problems[:3]) if problems else str(exc)
                )
        if error is None and topology is not None:
            # The bus cannot change live: its fingerprint says whether it did.
            if message.bus_fingerprint != controller.revision.bus:
                logger.warning("revision %s changes the bus: restart the runners to apply that part", revision.id)
            names = {spec.name for spec in topology.runner_specs()}
            for runner in mine:
                name = controller.spec_name(runner)
                if name not in names:
                    refusal = {"error": f"revision {revision.id} has no runner {name!r}", "summary": "not applied"}
                    await self._reply(message.source, runner.name, revision.id, False, refusal)
                    continue
                outcomes = await controller.apply(topology, revision, f"apply from {message.source}", only=name)
                for o in outcomes:
                    await self._reply(message.source, o.runner, revision.id, o.ok, o.to_dict())
            return
        logger.error("apply from %s: %s", message.source, error)
        for runner in mine:
            await self._reply(message.source, runner.name, message.revision, False, {"error": error, "summary": f"not applied: {error}"})

    async def _reply(self, to: str, runner: str, revision: str, ok: bool, outcome: dict[str, Any]) -> None:
        await self.bus.send(BusApplyReplyMessage(source=self.name, target=to, runner=runner, revision=revision, ok=ok, outcome=outcome))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.bus.unsubscribe(self)


class _Collector:
    def __init__(self, name: str) -> None:
        self.name = name
        self.messages: list[BusMessage] = []
        self.changed = asyncio.Event()

    async def on_bus_message(self, message: BusMessage) -> None:
        if isinstance(message, (BusStatusReplyMessage, BusApplyReplyMessage)):
            self.messages.append(message)
            self.changed.set()


async def ask_status(bus: WorkerBus, expected: Sequence[str | None], timeout: float = 5.0) -> list[dict[str, Any]]:
    """Every runner's status on ``bus`` (waits until each ``expected`` one answered, or ``timeout``)."""
    me = f"runnerconf-ps-{uuid.uuid4().hex[:8]}"
    collector = _Collector(me)
    await bus.subscribe(collector)
    await bus.start()
    try:
        await bus.send(BusStatusRequestMessage(source=me, target=RUNNERS))
        wanted = set(expected)

        def done() -> bool:
            return bool(wanted) and wanted <= {m.status.get("spec") for m in collector.messages if isinstance(m, BusStatusReplyMessage)}

        await wait_until(collector.changed, done, timeout, quiet=None if wanted else 1.0)
        return [m.status for m in collector.messages if isinstance(m, BusStatusReplyMessage)]
    finally:
        await bus.unsubscribe(collector)
        await bus.stop()


async def apply_revision(
    bus: WorkerBus, revision: Revision, runners: Sequence[str], timeout: float = 60.0
) -> dict[str, BusApplyReplyMessage]:
    """Send ``revision`` to ``runners`` and wait (``timeout``) for each one's reply, by runner."""
    me = f"runnerconf-apply-{uuid.uuid4().hex[:8]}"
    collector = _Collector(me)
    await bus.subscribe(collector)
    await bus.start()
    try:
        await bus.send(
            BusApplyRequestMessage(
                source=me, target=RUNNERS, revision=revision.id, content=revision.content,
                bus_fingerprint=revision.bus, git=revision.git, runners=list(runners),
            )
        )  # fmt: skip

        def replies() -> dict[str, BusApplyReplyMessage]:
            return {m.runner: m for m in collector.messages if isinstance(m, BusApplyReplyMessage) and m.revision == revision.id}

        await wait_until(collector.changed, lambda: set(runners) <= set(replies()), timeout)
        return replies()
    finally:
        await bus.unsubscribe(collector)
        await bus.stop()
