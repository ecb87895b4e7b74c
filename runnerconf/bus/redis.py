"""``RedisBus``: a topology spread over processes and machines, on Redis pub/sub.

Needs the ``redis`` extra (``pip install 'runnerconf[redis]'``); redis-py is imported lazily.

Delivery: a message for a local subscriber is delivered here and never leaves the process;
anything else is delivered to local subscribers (groups, broadcasts) *and* published. One
publisher task per bus sends what is queued in batches, one PUBLISH per batch, so messages from
one sender keep their order and a burst costs a round trip per batch instead of per message.
Each bus ignores the echo of its own frames.

Losing the connection does not stop the runner: the bus logs it, reconnects with exponential
backoff, resubscribes and tells the runner (which re-announces its registry). While disconnected:

* what this process sends is kept (up to ``max_buffer`` messages, oldest dropped first, with a
  warning) and published, in order, once the server answers again; peers that are subscribed by
  then receive it;
* what *other* processes publish meanwhile is lost for this one: Redis pub/sub keeps nothing for
  an absent subscriber.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from runnerconf.bus.base import BusUnavailableError, WorkerBus
from runnerconf.bus.messages import BusMessage
from runnerconf.bus.wire import WireError, decode_frame, encode_message, frame_prefix

__all__ = ["RedisBus"]

logger = logging.getLogger(__name__)

INSTALL_HINT = "RedisBus needs redis-py: pip install 'runnerconf[redis]'"


def _redis() -> Any:
    try:
        import redis.asyncio as aioredis
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return aioredis


def redact(url: str) -> str:
    """The URL without its password."""
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


class RedisBus(WorkerBus):
    """A network bus on one Redis pub/sub channel.

    Args:
        url: ``redis://[:password@]host:port/db`` (or ``rediss://``).
        channel: The channel every runner of the topology shares.
        connect_timeout: Seconds to reach the server at start (BusUnavailableError after).
        reconnect_initial, reconnect_max: Backoff between reconnection attempts.
        max_batch: Most messages per PUBLISH.
        max_buffer: Most messages kept while disconnected (the oldest are dropped beyond).
    """

    is_network = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        channel: str = "runnerconf",
        connect_timeout: float = 5.0,
        reconnect_initial: float = 0.1,
        reconnect_max: float = 5.0,
        max_batch: int = 512,
        max_buffer: int = 100_000,
    ) -> None:
        super().__init__()
        _redis()  # fail now, with the install hint, rather than at start
        self.url = url
        self.channel = channel
        self.connect_timeout = connect_timeout
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.max_batch = max_batch
        self.max_buffer = max_buffer
        #: Identifies this bus's frames, so that it can skip their echo.
        self.id = uuid.uuid4().hex
        self._outbox: deque[bytes] = deque()
        self._dropped = 0
        self._wake: asyncio.Future[None] | None = None
        self._connected = asyncio.Event()
        self._client: Any = None
        self._pubsub: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reconnect_callbacks: list[Callable[[], Awaitable[None]]] = []
        self._drained = asyncio.Event()
        self._drained.set()
        self._prefix = frame_prefix(self.id)
        #: Frames received that could not be decoded (logged and skipped).
        self.bad_frames = 0

    def on_reconnect(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Call ``callback()`` after each reconnection (the runner re-announces itself)."""
        self._reconnect_callbacks.append(callback)

    @property
    def connected(self) -> bool:
        """Whether the subscription is live."""
        return self._connected.is_set()

    # -- sending -------------------------------------------------------------------------------

    async def publish(self, message: BusMessage) -> None:
        target = message.target
        local_only = target is not None and target[0] != "@"
        if local_only and self.is_subscribed(target):  # type: ignore[arg-type]
            self.deliver(message)  # worker names are unique in a topology: it is here
            return
        # Encode first: a payload that is not JSON fails in the sender, not on the wire.
        outbox = self._outbox
        outbox.append(encode_message(message))
        self._drained.clear()
        if len(outbox) > self.max_buffer:
            outbox.popleft()
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                logger.warning("redis bus %s: send buffer full; %d oldest message(s) dropped", self.channel, self._dropped)
        waiter = self._wake
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if not local_only:
            self.deliver(message)  # a broadcast or a group: local subscribers get it too
        if len(outbox) % self.max_batch == 0:
            # A sender in a tight loop never yields otherwise: let the publisher ship each full
            # batch while the next one is being encoded.
            await asyncio.sleep(0)

    async def _publish_loop(self) -> None:
        loop = asyncio.get_running_loop()
        outbox = self._outbox
        delay = self.reconnect_initial
        failing = False
        while True:
            if not outbox:
                self._drained.set()
                self._wake = loop.create_future()
                await self._wake
                continue
            count = min(len(outbox), self.max_batch)
            batch = [outbox.popleft() for _ in range(count)]
            try:
                await self._client.publish(self.channel, self._prefix + b",".join(batch) + b"]}")
            except asyncio.CancelledError:
                outbox.extendleft(reversed(batch))
                raise
            except Exception as exc:
                # Keep them, in order, and retry with backoff (the pool reconnects on its own).
                outbox.extendleft(reversed(batch))
                if not failing:
                    failing = True
                    logger.warning(
                        "redis bus %s: cannot publish to %s (%s: %s); keeping %d message(s) and retrying",
                        self.channel,
                        redact(self.url),
                        type(exc).__name__,
                        exc,
                        len(outbox),
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max)
                continue
            if failing:
                failing = False
                logger.warning("redis bus %s: publishing again", self.channel)
            delay = self.reconnect_initial

    # -- receiving -----------------------------------------------------------------------------

    def _on_frame(self, data: bytes) -> None:
        if data.startswith(self._prefix):
            return  # the echo of our own frame: delivered here when it was sent
        try:
            sender, messages = decode_frame(data, self._wants)
        except WireError as exc:
            self.bad_frames += 1
            logger.warning("redis bus %s: skipped a frame that is not runnerconf's: %s", self.channel, exc)
            return
        if sender == self.id:
            return
        for message in messages:
            if isinstance(message, WireError):
                self.bad_frames += 1
                logger.warning("redis bus %s: skipped a message from %s: %s", self.channel, sender[:8], message)
            else:
                self.deliver(message)

    def _wants(self, target: Any) -> bool:
        # Broadcasts, groups, and names subscribed here; a bad target is let through to be reported.
        return not isinstance(target, str) or target[:1] == "@" or target in self._subscriptions

    async def _subscribe(self) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=False)
        try:
            await pubsub.subscribe(self.channel)
            # Wait for the confirmation: from here on nothing published on the channel is missed.
            while True:
                item = await asyncio.wait_for(pubsub.get_message(timeout=self.connect_timeout), self.connect_timeout + 1)
                if item is None:
                    raise TimeoutError("no subscription confirmation")
                if item["type"] == "subscribe":
                    break
        except BaseException:
            await pubsub.aclose()
            raise
        self._pubsub = pubsub
        self._connected.set()

    async def _read_loop(self) -> None:
        delay = self.reconnect_initial
        while True:
            if self._pubsub is None:
                try:
                    await self._subscribe()
                except Exception as exc:
                    logger.warning(
                        "redis bus %s: cannot reconnect to %s (%s); next try in %.1fs",
                        self.channel,
                        redact(self.url),
                        exc,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.reconnect_max)
                    continue
                delay = self.reconnect_initial
                logger.warning("redis bus %s: reconnected to %s and resubscribed", self.channel, redact(self.url))
                for callback in self._reconnect_callbacks:
                    asyncio.ensure_future(self._guard(callback))
            try:
                while True:
                    item = await self._pubsub.get_message(timeout=None)
                    if item is not None and item["type"] == "message":
                        self._on_frame(item["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._lost(exc)
                pubsub, self._pubsub = self._pubsub, None
                await _quietly(pubsub.aclose())
                await asyncio.sleep(delay)

    def _lost(self, exc: BaseException) -> None:
        if self._connected.is_set():
            self._connected.clear()
            logger.warning(
                "redis bus %s: lost the connection to %s (%s: %s); reconnecting",
                self.channel,
                redact(self.url),
                type(exc).__name__,
                exc,
            )

    @staticmethod
    async def _guard(callback: Callable[[], Awaitable[None]]) -> None:
        try:
            await callback()
        except Exception:
            logger.exception("redis bus: reconnect callback failed")

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, subscribe, and start delivering (idempotent).

        Raises:
            BusUnavailableError: the server cannot be reached within ``connect_timeout``.
        """
        if self.running:
            return
        aioredis = _redis()
        self._client = aioredis.Redis.from_url(self.url, socket_connect_timeout=self.connect_timeout)
        try:
            await asyncio.wait_for(self._client.ping(), self.connect_timeout)
            await self._subscribe()
        except (TimeoutError, Exception) as exc:
            await _quietly(self._client.aclose())
            self._client = None
            raise BusUnavailableError(f"cannot reach Redis at {redact(self.url)}: {exc or type(exc).__name__}") from exc
        await super().start()
        self._tasks = [
            asyncio.ensure_future(self._read_loop()),
            asyncio.ensure_future(self._publish_loop()),
        ]
        logger.info("redis bus %s: connected to %s", self.channel, redact(self.url))

    async def stop(self, flush_timeout: float = 2.0) -> None:
        """Send what is queued (bounded by ``flush_timeout``), then disconnect (idempotent)."""
        if not self.running:
            return
        if self._outbox:
            try:
                await asyncio.wait_for(self._drained.wait(), flush_timeout)
            except TimeoutError:
                pass
        if self._outbox:
            logger.warning("redis bus %s: %d message(s) not sent before stop", self.channel, len(self._outbox))
            self._outbox.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._pubsub is not None:
            await _quietly(self._pubsub.aclose())
            self._pubsub = None
        if self._client is not None:
            await _quietly(self._client.aclose())
            self._client = None
        self._connected.clear()
        await super().stop()

    def __repr__(self) -> str:
        state = "connected" if self.connected else ("running" if self.running else "stopped")
        return f"<RedisBus {redact(self.url)} channel={self.channel} {state}>"


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:
        logger.debug("ignored an error while closing", exc_info=True)
