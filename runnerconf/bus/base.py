"""The bus abstraction: subscribers, per-subscriber dispatch and the :class:`WorkerBus` base."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import deque
from typing import Protocol, runtime_checkable

from runnerconf.bus.messages import BusMessage

__all__ = ["BusError", "BusSubscriber", "BusUnavailableError", "WorkerBus"]

logger = logging.getLogger(__name__)

# A dispatcher that finds its queue full keeps running handlers without suspending (like
# ``await queue.get()`` on a non-empty queue).  Every this many messages it yields once, so a
# long burst to one subscriber cannot starve the rest of the loop.
_YIELD_EVERY = 256


class BusError(Exception):
    """A bus problem."""


class BusUnavailableError(BusError):
    """The bus cannot be reached (a network bus whose server is down or unknown)."""


@runtime_checkable
class BusSubscriber(Protocol):
    """Anything with a unique ``name`` and an async ``on_bus_message`` can subscribe to a bus."""

    @property
    def name(self) -> str: ...

    async def on_bus_message(self, message: BusMessage) -> None: ...


class _Subscription:
    """One subscriber's two queues (system first, then data) and its dispatcher task.

    One task per subscriber runs its handler, so a subscriber never sees two of its handler calls
    at once, and a slow subscriber delays nobody else.
    """

    __slots__ = ("subscriber", "system", "data", "waiter", "task", "closed")

    def __init__(self, subscriber: BusSubscriber) -> None:
        self.subscriber = subscriber
        self.system: deque[BusMessage] = deque()
        self.data: deque[BusMessage] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    def push(self, message: BusMessage) -> None:
        if message.system:
            self.system.append(message)
        else:
            self.data.append(message)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def pending(self) -> int:
        return len(self.system) + len(self.data)

    async def dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        system, data = self.system, self.data
        handler = self.subscriber.on_bus_message
        name = self.subscriber.name
        burst = 0
        while not self.closed:
            if system:
                message = system.popleft()
            elif data:
                message = data.popleft()
            else:
                burst = 0
                self.waiter = loop.create_future()
                await self.waiter
                continue
            try:
                await handler(message)
            except Exception:
                # One subscriber's failure must never stop delivery, to it or to anyone else.
                logger.exception("bus subscriber %r failed handling %s", name, message)
            burst += 1
            if burst >= _YIELD_EVERY:
                burst = 0
                await asyncio.sleep(0)


class WorkerBus(ABC):
    """Publish/subscribe bus that workers and runners talk over.

    Delivery rules, for every bus:

    * a message with a ``target`` reaches only the local subscriber of that name, or, for a target
      starting with ``@``, every local subscriber in that group (``@runners``: every runner); a
      message without one reaches every local subscriber;
    * per subscriber, system messages are handled before queued data messages, and within a class
      messages are handled in send order; a subscriber's handler is never called concurrently;
    * an exception raised by a handler is logged and delivery goes on;
    * messages sent before :meth:`start` are queued and delivered once started; :meth:`stop` drops
      what is still queued (logging how much) so a restarted bus never replays stale messages.

    Subclasses implement :meth:`publish`, which carries non-local messages to every bus sharing the
    topology (the in-process bus simply delivers them here).
    """

    #: True for buses that reach other processes (runners then exchange registries over them).
    is_network: bool = False

    def __init__(self) -> None:
        self._subscriptions: dict[str, _Subscription] = {}
        self._groups: dict[str, dict[str, _Subscription]] = {}
        self._running = False

    # -- subscriptions -------------------------------------------------------------------------

    def subscribe(self, subscriber: BusSubscriber, *, groups: tuple[str, ...] = ()) -> None:
        """Subscribe ``subscriber`` under its name (and in ``groups``, names starting with ``@``).

        Subscribing the same object twice is a no-op; another object with a name already taken is
        refused with :class:`ValueError` (messages for that name could not be told apart).
        """
        current = self._subscriptions.get(subscriber.name)
        if current is not None:
            if current.subscriber is subscriber:
                return
            raise ValueError(f"a bus subscriber named {subscriber.name!r} is already subscribed")
        if subscriber.name.startswith("@") or any(not g.startswith("@") for g in groups):
            raise ValueError("subscriber names cannot start with '@'; group names must")
        subscription = _Subscription(subscriber)
        self._subscriptions[subscriber.name] = subscription
        for group in groups:
            self._groups.setdefault(group, {})[subscriber.name] = subscription
        if self._running:
            self._start_dispatch(subscription)

    def unsubscribe(self, subscriber: BusSubscriber | str) -> None:
        """Remove a subscriber; messages still queued for it are dropped."""
        name = subscriber if isinstance(subscriber, str) else subscriber.name
        subscription = self._subscriptions.pop(name, None)
        if subscription is not None:
            for members in self._groups.values():
                members.pop(name, None)
            self._close(subscription)

    def is_subscribed(self, name: str) -> bool:
        """Whether a local subscriber of that name exists."""
        return name in self._subscriptions

    # -- sending -------------------------------------------------------------------------------

    async def send(self, message: BusMessage) -> None:
        """Send a message: local-only messages are delivered here, others are published."""
        if message.local:
            self.deliver(message)
        else:
            await self.publish(message)

    @abstractmethod
    async def publish(self, message: BusMessage) -> None:
        """Carry a non-local message to every bus of the topology, this one included."""

    def deliver(self, message: BusMessage) -> None:
        """Queue ``message`` for its local recipients. Never blocks, never yields."""
        target = message.target
        if target is None:
            for subscription in self._subscriptions.values():
                subscription.push(message)
            return
        found = self._subscriptions.get(target)
        if found is not None:
            found.push(message)
        elif target[0] == "@":
            for member in self._groups.get(target, {}).values():
                member.push(message)
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("no local subscriber %r for %s", target, message)

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
            self._start_dispatch(subscription)

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
            dropped += subscription.pending()
            subscription.system.clear()
            subscription.data.clear()
        current = asyncio.current_task()
        await asyncio.gather(*(t for t in tasks if t is not current), return_exceptions=True)
        if dropped:
            logger.warning("bus stopped with %d undelivered message(s); they were dropped", dropped)

    def _start_dispatch(self, subscription: _Subscription) -> None:
        if subscription.task is None:
            subscription.task = asyncio.get_running_loop().create_task(
                subscription.dispatch(), name=f"bus-dispatch:{subscription.subscriber.name}"
            )

    def _close(self, subscription: _Subscription) -> None:
        subscription.closed = True
        subscription.system.clear()
        subscription.data.clear()
        task = subscription.task
        subscription.task = None
        if task is None:
            return
        if task is asyncio.current_task():
            # Unsubscribing from inside one's own handler: the loop ends after this handler.
            return
        task.cancel()

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<{type(self).__name__} {state} subscribers={len(self._subscriptions)}>"
