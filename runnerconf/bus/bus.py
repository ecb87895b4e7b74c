"""The bus abstraction: subscriptions, per-subscriber dispatch, bounds, and :class:`WorkerBus`."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from typing import Any

from runnerconf.bus.messages import BusMessage
from runnerconf.bus.subscriber import BusSubscriber
from runnerconf.utils.base_object import BaseObject

__all__ = ["DEFAULT_MAX_QUEUED", "BusError", "BusUnavailableError", "Receipt", "WorkerBus"]

logger = logging.getLogger(__name__)

#: Data messages queued for one subscriber before senders wait (see :class:`WorkerBus`).
DEFAULT_MAX_QUEUED = 10_000

# A dispatcher that finds its queue full keeps running handlers without suspending (like
# ``await queue.get()`` on a non-empty queue).  Every this many messages it yields once, so a
# long burst to one subscriber cannot starve the rest of the loop.
_YIELD_EVERY = 256
#: Departed subscriber names remembered (a worker that restarts is subscribed again).
_MAX_DEPARTED = 10_000


class BusError(Exception):
    """A bus problem."""


class BusUnavailableError(BusError):
    """The bus cannot be reached (a network bus whose server is down or unknown)."""


def _default_accepts(subscriber: Any) -> Any:
    """The subscriber's ``accepts_bus_message``, or None when it takes everything."""
    accepts = getattr(subscriber, "accepts_bus_message", None)
    if accepts is None or getattr(accepts, "__func__", None) is BusSubscriber.accepts_bus_message:
        return None
    return accepts


#: Stands for a subscription's queues until it gets a message: always empty (``maxlen=0``), and
#: never appended to (:meth:`_Subscription.push` replaces it first).
_NO_QUEUE: deque[Any] = deque(maxlen=0)


class _Subscription:
    """One subscriber's two queues (system first, then data) and its dispatcher task.

    One task per subscriber runs its handler, so a subscriber never sees two of its handler calls
    at once, and a slow subscriber delays nobody else. The task is created when the first message
    arrives: a subscriber that is never sent anything costs no task.
    """

    __slots__ = ("subscriber", "system", "data", "waiter", "task", "closed", "bound", "room", "bus")

    def __init__(self, bus: WorkerBus, subscriber: Any, bound: int) -> None:
        self.bus = bus
        self.subscriber = subscriber
        # Two shared empty queues until the first message: most subscribers of a big topology
        # (idle workers) are never sent one, and a deque is 760 bytes.
        self.system: deque[BusMessage] = _NO_QUEUE
        self.data: deque[BusMessage] = _NO_QUEUE
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self.bound = bound
        # Senders waiting for the data queue to have room again.
        self.room: list[asyncio.Future[None]] | None = None

    def push(self, message: BusMessage) -> bool:
        """Queue ``message``; True when the data queue is now over its bound."""
        if self.data is _NO_QUEUE:
            self.system, self.data = deque(), deque()
        if message.system:
            self.system.append(message)
            over = False
        else:
            data = self.data
            data.append(message)
            over = len(data) > self.bound
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)
        elif self.task is None and self.bus._running:
            self.start()
        return over

    def start(self) -> None:
        if self.task is None and not self.closed:
            if self.data is _NO_QUEUE:  # the dispatcher keeps these: they must be its own
                self.system, self.data = deque(), deque()
            self.task = asyncio.get_running_loop().create_task(
                self.dispatch(), name=f"bus-dispatch:{self.subscriber.name}"
            )

    def pending(self) -> int:
        return len(self.system) + len(self.data)

    def wait_room(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.room is None:
            self.room = []
        self.room.append(future)
        return future

    def release(self) -> None:
        """Wake every sender waiting for room (the queue drained, or the subscription ended)."""
        room, self.room = self.room, None
        if room:
            for future in room:
                if not future.done():
                    future.set_result(None)

    async def dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        system, data = self.system, self.data
        subscriber = self.subscriber
        handler = subscriber.on_bus_message
        accepts = _default_accepts(subscriber)
        low = self.bound // 2
        bus = self.bus
        receipts = bus._receipts  # the same dict for the bus's life (cleared, never replaced)
        every = _YIELD_EVERY
        handled = 0  # since the last yield: added to bus.delivered then and when idle, not per message
        while True:
            if system:
                message = system.popleft()
            elif data:
                message = data.popleft()
                if self.room is not None and len(data) <= low:
                    self.release()
            else:
                # Closing empties the queues: the loop always comes here to find out.
                bus.delivered += handled
                handled = 0
                if self.closed:
                    return
                self.waiter = loop.create_future()
                await self.waiter
                continue
            if accepts is not None:
                try:
                    taken = accepts(message)
                except Exception:
                    logger.exception("bus subscriber %r failed deciding on %s", subscriber.name, message)
                    taken = False
                if not taken:
                    if receipts:
                        bus._settle(message)
                    continue
            try:
                await handler(message)
            except Exception:
                # One subscriber's failure must never stop delivery, to it or to anyone else.
                logger.exception("bus subscriber %r failed handling %s", subscriber.name, message)
            if receipts:
                bus._settle(message)
            handled += 1
            if handled >= every:
                bus.delivered += handled
                handled = 0
                await asyncio.sleep(0)


class Receipt:
    """Deliveries of the messages of one received frame, counted down as subscribers handle them
    (see :meth:`WorkerBus.deliver_tracked`); ``on_settled`` is called once, after :meth:`close`
    when none is left."""

    __slots__ = ("pending", "closed", "on_settled")

    def __init__(self, on_settled: Any) -> None:
        self.pending = 0
        self.closed = False
        self.on_settled = on_settled

    def close(self) -> None:
        """Every message of the frame is queued: settle as soon as they are handled."""
        self.closed = True
        if self.pending <= 0:
            self._settle()

    def done_one(self) -> None:
        self.pending -= 1
        if self.closed and self.pending <= 0:
            self._settle()

    def _settle(self) -> None:
        callback, self.on_settled = self.on_settled, None
        if callback is not None:
            callback()


class WorkerBus(BaseObject, ABC):
    """Publish/subscribe bus that workers and runners talk over (pipecat's ``WorkerBus``).

    Delivery rules, for every bus:

    * a message with a ``target`` reaches only the local subscriber of that name, or, for a target
      starting with ``@``, every local subscriber in that group (``@runners``: every runner); a
      message without one reaches every local subscriber;
    * per subscriber, system messages are handled before queued data messages, and within a class
      messages are handled in send order; a subscriber's handler is never called concurrently;
    * an exception raised by a handler is logged and delivery goes on;
    * each subscriber's data queue holds at most ``max_queued`` messages: a :meth:`send` that
      fills one waits until that subscriber has worked half of it off (backpressure; nothing is
      dropped). System messages are never held back. A handler sending to its own subscriber
      never waits (it would wait for itself);
    * messages sent before :meth:`start` are queued and delivered once started; :meth:`stop` drops
      what is still queued (logging how much) so a restarted bus never replays stale messages.

    Subclasses implement :meth:`publish`, which carries non-local messages to every bus sharing the
    topology (the in-process bus simply delivers them here).

    Args:
        max_queued: Bound of each subscriber's data queue.
    """

    #: True for buses that reach other processes (runners then exchange registries over them).
    is_network: bool = False

    def __init__(self, *, max_queued: int = DEFAULT_MAX_QUEUED, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if max_queued < 1:
            raise ValueError("max_queued must be at least 1")
        self.max_queued = max_queued
        self._subscriptions: dict[str, _Subscription] = {}
        self._groups: dict[str, dict[str, _Subscription]] = {}
        self._running = False
        #: Tracked deliveries (see :meth:`deliver_tracked`): message id -> its receipt.
        self._receipts: dict[int, tuple[Receipt, list[int]]] = {}
        #: Names that were subscribed here and have gone, latest last (see remove_subscriber).
        self._departed: OrderedDict[str, None] = OrderedDict()
        #: Messages sent through this bus, and handled by its local subscribers (for metrics).
        self.sent = 0
        self.delivered = 0

    # -- subscriptions -------------------------------------------------------------------------

    async def subscribe(self, subscriber: Any, *, groups: tuple[str, ...] = ()) -> None:
        """Subscribe ``subscriber`` under its name (and in ``groups``, names starting with ``@``).

        Subscribing the same object twice (or a worker attached already) is a no-op; another object
        with a name already taken is refused with :class:`ValueError` (pipecat drops it silently;
        messages for that name could not be told apart).
        """
        self.add_subscriber(subscriber, groups=groups)

    def add_subscriber(self, subscriber: Any, *, groups: tuple[str, ...] = ()) -> None:
        """:meth:`subscribe`, for code that cannot await."""
        name = subscriber.name
        current = self._subscriptions.get(name)
        if current is not None:
            if current.subscriber is subscriber or getattr(current.subscriber, "worker", None) is subscriber:
                return  # the same one (or a worker whose inbox is subscribed already)
            raise ValueError(f"a bus subscriber named {name!r} is already subscribed")
        if name.startswith("@") or any(not g.startswith("@") for g in groups):
            raise ValueError("subscriber names cannot start with '@'; group names must")
        subscription = _Subscription(self, subscriber, self.max_queued)
        self._subscriptions[name] = subscription
        self._departed.pop(name, None)
        for group in groups:
            self._groups.setdefault(group, {})[name] = subscription

    async def unsubscribe(self, subscriber: Any) -> None:
        """Remove a subscriber (or a name); messages still queued for it are dropped."""
        self.remove_subscriber(subscriber)

    def remove_subscriber(self, subscriber: Any) -> None:
        """:meth:`unsubscribe`, for code that cannot await."""
        name = subscriber if isinstance(subscriber, str) else subscriber.name
        subscription = self._subscriptions.pop(name, None)
        if subscription is not None:
            for members in self._groups.values():
                members.pop(name, None)
            self._close(subscription)
            # Remembered (bounded) so that a durable transport keeps what comes for it later.
            self._departed[name] = None
            if len(self._departed) > _MAX_DEPARTED:
                self._departed.popitem(last=False)  # O(1) (next(iter(dict)) is not, after deletes)

    def is_idle(self, name: str) -> bool:
        """Whether the subscriber ``name`` has nothing queued and no handler running."""
        subscription = self._subscriptions.get(name)
        if subscription is None:
            return False
        idle = subscription.task is None or subscription.waiter is not None
        return idle and not subscription.system and not subscription.data

    def is_subscribed(self, name: str) -> bool:
        """Whether a local subscriber of that name exists."""
        return name in self._subscriptions

    def queued(self) -> dict[str, int]:
        """Messages waiting, per subscriber."""
        return {name: s.pending() for name, s in self._subscriptions.items()}

    # -- sending -------------------------------------------------------------------------------

    async def send(self, message: BusMessage) -> None:
        """Send a message: local-only messages are delivered here, others are published."""
        self.sent += 1
        if message.local:
            full = self.deliver(message)
            if full:
                await self.wait_for_room(full)
        else:
            await self.publish(message)

    @abstractmethod
    async def publish(self, message: BusMessage) -> None:
        """Carry a non-local message to every bus of the topology, this one included."""

    def deliver(self, message: BusMessage) -> list[_Subscription] | None:
        """Queue ``message`` for its local recipients. Never blocks, never yields.

        Returns the subscriptions whose data queue is now over its bound (None if none is), for
        a caller that can wait: see :meth:`wait_for_room`.
        """
        target = message.target
        full: list[_Subscription] | None = None
        if target is None:
            # (AsyncQueueBus.send queues a broadcast data message itself, push() inlined: the hot
            # path of a fan-out. Here it is what a network bus receives.)
            for subscription in self._subscriptions.values():
                if subscription.push(message):
                    full = [subscription] if full is None else [*full, subscription]
            return full
        found = self._subscriptions.get(target)
        if found is not None:
            return [found] if found.push(message) else None
        if target[:1] == "@":
            for member in self._groups.get(target, {}).values():
                if member.push(message):
                    full = [member] if full is None else [*full, member]
            return full
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("no local subscriber %r for %s", target, message)
        return None

    def deliver_tracked(self, message: BusMessage, receipt: Receipt) -> list[_Subscription] | None:
        """:meth:`deliver`, counted on ``receipt``: it settles once every subscriber the
        message was queued for has handled it (or passed it by; one that goes away with it still
        queued keeps it from settling), and the receipt
        is closed. Messages dropped by :meth:`stop` never settle: a durable transport delivers
        them again."""
        full = self.deliver(message)
        count = len(self._recipients(message))
        if count:
            receipt.pending += count
            self._receipts[message.id] = (receipt, [count])
        return full

    def _recipients(self, message: BusMessage) -> list[_Subscription]:
        """Who :meth:`deliver` queues ``message`` for."""
        target = message.target
        if target is None:
            return list(self._subscriptions.values())
        found = self._subscriptions.get(target)
        if found is not None:
            return [found]
        if target[:1] == "@":
            return list(self._groups.get(target, {}).values())
        return []

    def _settle(self, message: BusMessage) -> None:
        """One delivery of a tracked message is over."""
        entry = self._receipts.get(message.id)
        if entry is None:
            return
        receipt, left = entry
        left[0] -= 1
        if left[0] <= 0:
            del self._receipts[message.id]
        receipt.done_one()

    def on_message_received(self, message: BusMessage) -> None:
        """Pipecat's name for :meth:`deliver`, for buses written against pipecat's ``WorkerBus``."""
        self.deliver(message)

    async def wait_for_room(self, full: list[_Subscription]) -> None:
        """Wait until each of ``full`` has room again (or is gone, or is the caller itself)."""
        current = asyncio.current_task()
        for subscription in full:
            if subscription.task is current or subscription.closed or not self._running:
                continue
            if len(subscription.data) > subscription.bound:
                await subscription.wait_room()

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the bus is started."""
        return self._running

    async def start(self) -> None:
        """Start delivering. Idempotent."""
        if self._running:
            return
        self._running = True
        for subscription in self._subscriptions.values():
            if subscription.pending():
                subscription.start()

    async def stop(self) -> None:
        """Stop delivering and drop queued messages. Idempotent."""
        if not self._running:
            return
        self._running = False
        dropped = 0
        tasks = []
        for subscription in self._subscriptions.values():
            if subscription.task is not None:
                subscription.task.cancel()
                tasks.append(subscription.task)
                subscription.task = None
            subscription.waiter = None
            dropped += subscription.pending()
            subscription.system.clear()
            subscription.data.clear()
            subscription.release()
        self._receipts.clear()  # never settled: a durable transport delivers them again
        current = asyncio.current_task()
        await asyncio.gather(*(t for t in tasks if t is not current), return_exceptions=True)
        if dropped:
            logger.warning("bus stopped with %d undelivered message(s); they were dropped", dropped)

    def _close(self, subscription: _Subscription) -> None:
        if self._receipts:
            # Its queued messages were not handled: their frames are never settled (acknowledged),
            # so that a durable transport delivers them again after a restart.
            for message in (*subscription.system, *subscription.data):
                self._receipts.pop(message.id, None)
        subscription.closed = True
        subscription.system.clear()
        subscription.data.clear()
        subscription.release()
        waiter, subscription.waiter = subscription.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        task = subscription.task
        subscription.task = None
        if task is None or task is asyncio.current_task():
            # Unsubscribing from inside one's own handler: the loop ends after this handler.
            return
        task.cancel()

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<{type(self).__name__} {state} subscribers={len(self._subscriptions)}>"
