"""``RedisBus``: a topology spread over processes and machines, on Redis pub/sub.

Needs the ``redis`` extra (``pip install 'runnerconf[redis]'``); redis-py is imported lazily.

Delivery: a message for a local subscriber is delivered here and never leaves the process;
anything else is delivered to local subscribers (groups, broadcasts) *and* published. One
publisher task per bus sends what is queued in batches, one PUBLISH per batch, so messages from
one sender keep their order and a burst costs a round trip per batch instead of per message.
Each bus ignores the echo of its own frames.

Bounded, and nothing lost while Redis answers: while connected, ``send()`` waits when
``max_buffer`` messages are waiting to be published (backpressure); a local subscriber whose queue
is full makes the reader wait too. A frame that is too big, too deep or not runnerconf's is
skipped and logged (once a minute per sender), never taken for a lost connection.

Losing the connection does not stop the runner: the bus logs it, reconnects with exponential
backoff, resubscribes and tells the runner (which re-announces its registry). While disconnected:

* what this process sends is kept (up to ``max_buffer`` messages, oldest dropped first, with a
  warning) and published, in order, once the server answers again; peers that are subscribed by
  then receive it;
* with ``delivery="pubsub"`` (the default), what *other* processes publish meanwhile is lost for
  this one: Redis pub/sub keeps nothing for an absent subscriber. With ``delivery="stream"`` it
  waits in a Redis stream, and is read when the bus is back (see
  :mod:`runnerconf.bus.network.streams`).

A serializer that signs (:class:`~runnerconf.bus.serializers.signed.SignedSerializer`) makes the
bus refuse, unread, every frame whose signature does not hold; they are counted in
``rejected_frames``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from runnerconf.bus.bus import DEFAULT_MAX_QUEUED, BusUnavailableError, Receipt, WorkerBus
from runnerconf.bus.messages import BusMessage
from runnerconf.bus.network.streams import StreamLink, entry_time, frame_of
from runnerconf.bus.serializers import JSONMessageSerializer, MessageSerializer
from runnerconf.bus.serializers.signed import SignedSerializer
from runnerconf.bus.signing import SignatureError
from runnerconf.bus.wire import MAX_FRAME_BYTES, WireError
from runnerconf.utils.secrets import redact

__all__ = ["INSTALL_HINT", "RedisBus", "redact"]

logger = logging.getLogger(__name__)

INSTALL_HINT = "RedisBus needs redis-py: pip install 'runnerconf[redis]'"
DEFAULT_URL = "redis://127.0.0.1:6379/0"
_COMPLAIN_EVERY = 60.0
#: Tags of stream frames remembered, to hand each out once.
_SEEN_TAGS = 200_000


def _redis() -> Any:
    try:
        import redis.asyncio as aioredis
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return aioredis


class RedisBus(WorkerBus):
    """A network bus on one Redis pub/sub channel.

    Args:
        url: ``redis://[[user]:password@]host:port/db``, ``rediss://`` or ``unix://``.
        redis: A ready ``redis.asyncio.Redis`` client instead (as pipecat's ``RedisBus`` takes);
            the bus uses it and leaves it open.
        serializer: How messages travel (default: :class:`JSONMessageSerializer`).
        channel: The channel every runner of the topology shares.
        connect_timeout: Seconds to reach the server at start (BusUnavailableError after).
        reconnect_initial, reconnect_max: Backoff between reconnection attempts.
        max_batch: Most messages per PUBLISH.
        max_buffer: Most messages waiting to be published: ``send()`` waits beyond while
            connected; while disconnected the oldest are dropped.
        max_frame_bytes: Frames larger than this are skipped unread.
        max_queued: See :class:`~runnerconf.bus.WorkerBus`.
        delivery: ``"pubsub"`` or ``"stream"`` (Redis Streams: nothing lost while away).
        group: With streams, the consumer group: a stable name (the runner's) to resume from;
            None for a short-lived bus that starts at the end of the stream.
        max_len, retention: With streams, the bounds of the stream (entries, seconds).
    """

    is_network = True

    def __init__(
        self,
        url: str | None = None,
        *,
        redis: Any = None,
        serializer: MessageSerializer | None = None,
        channel: str = "pipecat:bus",
        connect_timeout: float = 5.0,
        reconnect_initial: float = 0.1,
        reconnect_max: float = 5.0,
        max_batch: int = 512,
        max_buffer: int = 100_000,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        max_queued: int = DEFAULT_MAX_QUEUED,
        delivery: str = "pubsub",
        group: str | None = None,
        max_len: int | None = 100_000,
        retention: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(max_queued=max_queued, **kwargs)
        if delivery not in ("pubsub", "stream"):
            raise ValueError(f"delivery must be 'pubsub' or 'stream', not {delivery!r}")
        if redis is None:
            _redis()  # fail now, with the install hint, rather than at start
        elif url is not None:
            raise ValueError("give RedisBus a url or a redis client, not both")
        self.url = url if url is not None else (_client_url(redis) if redis is not None else DEFAULT_URL)
        self._given_client = redis
        self.serializer = serializer or JSONMessageSerializer(max_frame_bytes=max_frame_bytes)
        self.channel = channel
        self.connect_timeout = connect_timeout
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.max_batch = max_batch if self.serializer.batches else 1
        self.max_buffer = max_buffer
        self.max_frame_bytes = max_frame_bytes
        #: Identifies this bus's frames, so that it can skip their echo.
        self.bus_id = uuid.uuid4().hex
        self._outbox: deque[bytes] = deque()
        self._dropped = 0
        self._wake: asyncio.Future[None] | None = None
        self._room: list[asyncio.Future[None]] = []
        self._connected = asyncio.Event()
        self._publishing = True  # the last PUBLISH went through
        self._client: Any = None
        self._pubsub: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reconnect_callbacks: list[Callable[[], Awaitable[None]]] = []
        self._drained = asyncio.Event()
        self._drained.set()
        self._complaints: dict[str, tuple[float, int]] = {}
        #: Frames received that could not be decoded (logged and skipped).
        self.bad_frames = 0
        #: Frames refused for their signature (none, wrong, expired, replayed), by reason.
        self.rejected_frames: dict[str, int] = {}
        self.delivery = delivery
        self._stream: StreamLink | None = (
            StreamLink(channel, group, max_len=max_len, retention=retention) if delivery == "stream" else None
        )
        self._seq = 0
        self._held = False
        #: A stream batch being added, kept with its tags until Redis has confirmed it.
        self._unsent: list[tuple[bytes, bytes]] | None = None
        self._seen_tags: set[bytes] = set()
        self._seen_order: deque[bytes] = deque()
        self._acks: list[Any] = []
        self._ack_task: asyncio.Task[None] | None = None
        #: Stream entries read again and not handed to subscribers twice.
        self.duplicates = 0
        #: Reconnections so far.
        self.reconnects = 0

    def on_reconnect(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Call ``callback()`` after each reconnection (the runner re-announces itself)."""
        self._reconnect_callbacks.append(callback)

    @property
    def connected(self) -> bool:
        """Whether the subscription is live and publishing works."""
        return self._connected.is_set() and self._publishing

    @property
    def outbox_size(self) -> int:
        """Messages waiting to be published (a stream batch being retried counts its frames)."""
        return len(self._outbox) + (len(self._unsent) if self._unsent else 0)

    # -- sending -------------------------------------------------------------------------------

    async def publish(self, message: BusMessage) -> None:
        target = message.target
        local_only = target is not None and target[0] != "@"
        if local_only and self.is_subscribed(target):  # type: ignore[arg-type]
            # Worker names are unique in a topology: it is here.
            full = self.deliver(message)
            if full:
                await self.wait_for_room(full)
            return
        # Encode first: a payload that is not JSON fails in the sender, not on the wire.
        encoded = self.serializer.encode(message)
        outbox = self._outbox
        while len(outbox) >= self.max_buffer and self.connected and self.running:
            # Backpressure: nothing is dropped while Redis answers.
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._room.append(future)
            await future
        outbox.append(encoded)
        self._drained.clear()
        if len(outbox) > self.max_buffer:
            outbox.popleft()
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                logger.warning(
                    "redis bus %s: disconnected and the send buffer is full; %d oldest message(s) dropped",
                    self.channel,
                    self._dropped,
                )
        waiter = self._wake
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if not local_only:
            full = self.deliver(message)  # a broadcast or a group: local subscribers get it too
            if full:
                await self.wait_for_room(full)
        if len(outbox) % self.max_batch == 0:
            # A sender in a tight loop never yields otherwise: let the publisher ship each full
            # batch while the next one is being encoded.
            await asyncio.sleep(0)

    def _release_room(self) -> None:
        room, self._room = self._room, []
        for future in room:
            if not future.done():
                future.set_result(None)

    async def _publish_loop(self) -> None:
        loop = asyncio.get_running_loop()
        outbox = self._outbox
        delay = self.reconnect_initial
        serializer = self.serializer
        me = asyncio.current_task()
        while True:
            if me is not None and me.cancelling():
                raise asyncio.CancelledError  # the client swallowed our cancel: we do not
            unsent = self._unsent
            if unsent is None and not outbox:
                self._drained.set()
                self._wake = loop.create_future()
                await self._wake
                continue
            batch: list[bytes] = []
            try:
                if self._stream is not None:
                    if unsent is None:
                        count = min(len(outbox), self.max_batch)
                        batch = [outbox.popleft() for _ in range(count)]
                        unsent = self._unsent = [(frame, self._next_tag()) for frame in serializer.frames(self.bus_id, batch)]
                        batch = []  # in ``unsent`` now, with their tags
                    # A batch whose reply was lost may be in the stream already: it is retried as
                    # it was, same frames, same tags, so that receivers drop the copy.
                    await self._stream.add(self._client, unsent)
                    self._unsent = None
                else:
                    count = min(len(outbox), self.max_batch)
                    batch = [outbox.popleft() for _ in range(count)]
                    for frame in serializer.frames(self.bus_id, batch):
                        await self._client.publish(self.channel, frame)
            except asyncio.CancelledError:
                outbox.extendleft(reversed(batch))
                raise
            except Exception as exc:
                # Keep them, in order, and retry with backoff (the pool reconnects on its own).
                outbox.extendleft(reversed(batch))
                _reraise_if_cancelled(exc)
                if self._publishing:
                    self._publishing = False
                    self._release_room()  # senders do not wait while disconnected
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
            if not self._publishing:
                self._publishing = True
                logger.warning("redis bus %s: publishing again", self.channel)
            delay = self.reconnect_initial
            if self._room and len(outbox) <= self.max_buffer // 2:
                self._release_room()

    # -- receiving -----------------------------------------------------------------------------

    def _complain(self, sender: str | None, text: str) -> None:
        """Log a skipped frame or message: once a minute per sender, with the count skipped."""
        key = sender or "?"
        now = time.monotonic()
        last, skipped = self._complaints.get(key, (-_COMPLAIN_EVERY, 0))
        if now - last >= _COMPLAIN_EVERY:
            more = f" ({skipped} more skipped since the last report)" if skipped else ""
            logger.warning("redis bus %s: skipped from %s: %s%s", self.channel, key[:16], text, more)
            self._complaints[key] = (now, 0)
            if len(self._complaints) > 1024:
                self._complaints.clear()
        else:
            self._complaints[key] = (last, skipped + 1)

    def _on_frame(self, data: bytes, receipt: Receipt | None = None, received_at: float | None = None) -> list[Any] | None:
        """Deliver one frame's messages (counted on ``receipt``, for streams); returns the
        subscriptions that are now full."""
        serializer = self.serializer
        sender = serializer.frame_sender(data)
        if sender == self.bus_id:
            return None  # the echo of our own frame: delivered here when it was sent
        if len(data) > self.max_frame_bytes:
            self.bad_frames += 1
            self._complain(sender, f"a frame of {len(data):,} bytes (the limit is {self.max_frame_bytes:,})")
            return None
        try:
            if isinstance(serializer, SignedSerializer):
                sender, messages = serializer.decode(data, self._wants, received_at=received_at)
            else:
                sender, messages = serializer.decode(data, self._wants)
        except SignatureError as exc:
            self.rejected_frames[exc.reason] = self.rejected_frames.get(exc.reason, 0) + 1
            self._complain(f"unsigned:{exc.reason}", f"{exc} (refused unread)")
            return None
        except WireError as exc:
            self.bad_frames += 1
            self._complain(sender, f"a frame that is not runnerconf's: {exc}")
            return None
        if sender == self.bus_id:
            return None
        full: list[Any] = []
        for message in messages:
            if isinstance(message, WireError):
                self.bad_frames += 1
                self._complain(sender, f"a message: {message}")
            else:
                got = self.deliver(message) if receipt is None else self.deliver_tracked(message, receipt)
                if got:
                    full.extend(got)
        return full or None

    # -- streams -------------------------------------------------------------------------------

    def _ack(self, entry_id: Any) -> None:
        """Acknowledge a stream entry (its messages are handled): sent in batches, soon."""
        self._acks.append(entry_id)
        if self._ack_task is None:
            self._ack_task = asyncio.get_running_loop().create_task(self._flush_acks())

    async def _flush_acks(self, delay: bool = True) -> None:
        if delay:
            await asyncio.sleep(0)  # one XACK for every entry settled this loop turn
        while self._acks:
            ids, self._acks = self._acks, []
            if self._stream is None or self._client is None:
                return
            try:
                await self._stream.ack(self._client, ids)
            except Exception as exc:
                # Unacknowledged entries stay pending: read (and dropped as seen) after a reconnect.
                logger.warning("redis bus %s: could not acknowledge %d entries (%s); they will be read again", self.channel, len(ids), exc)
        if delay:
            self._ack_task = None

    def _next_tag(self) -> bytes:
        self._seq += 1
        return f"{self.bus_id}:{self._seq}".encode()

    def _seen(self, tag: bytes | None) -> bool:
        """Whether a frame with this tag was handed out already (remembering it if not)."""
        if tag is None:
            return False
        if tag in self._seen_tags:
            return True
        self._seen_tags.add(tag)
        self._seen_order.append(tag)
        if len(self._seen_order) > _SEEN_TAGS:
            self._seen_tags.discard(self._seen_order.popleft())
        return False

    async def _join_stream(self) -> None:
        assert self._stream is not None
        missed = await self._stream.setup(self._client)
        if missed is None or missed > 0:
            count = "an unknown number of" if missed is None else f"{missed:,}"
            logger.warning(
                "redis bus %s: away longer than the stream keeps (max_len / retention): %s message frame(s) missed",
                self.channel,
                count,
            )
        self._connected.set()

    async def _read_stream_loop(self) -> None:
        link = self._stream
        assert link is not None
        delay = self.reconnect_initial
        me = asyncio.current_task()
        while True:
            if me is not None and me.cancelling():
                raise asyncio.CancelledError  # the client swallowed our cancel: we do not
            try:
                if not self._connected.is_set():
                    await self._join_stream()
                    delay = self.reconnect_initial
                    self.reconnects += 1
                    logger.warning("redis bus %s: reconnected to %s; reading the stream where it was left", self.channel, redact(self.url))
                    for callback in self._reconnect_callbacks:
                        asyncio.ensure_future(self._guard(callback))
                entries = await link.read(self._client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _reraise_if_cancelled(exc)
                self._lost(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max)
                continue
            for entry_id, fields in entries:
                frame, tag = frame_of(fields)
                if frame is None or self._seen(tag):
                    if frame is not None:
                        self.duplicates += 1
                    self._ack(entry_id)  # trimmed while pending, or handed out already
                    continue
                receipt = Receipt(lambda entry_id=entry_id: self._ack(entry_id))
                self._held = False
                try:
                    full = self._on_frame(frame, receipt, received_at=entry_time(entry_id))
                except Exception as exc:  # a bug guard: an entry must never cost the connection
                    self.bad_frames += 1
                    self._complain(None, f"a frame that failed to decode ({type(exc).__name__}: {exc})")
                    full = None
                if self._held:
                    # A message for a worker of this runner that has gone: not acknowledged, so
                    # the next start of this runner reads it again.
                    receipt.on_settled = None
                receipt.close()
                if full:
                    await self.wait_for_room(full)  # a local subscriber is behind: wait for it

    def _wants(self, target: Any) -> bool:
        # Broadcasts, groups, and names subscribed here; a bad target is let through to be reported.
        if not isinstance(target, str) or target[:1] == "@" or target in self._subscriptions:
            return True
        if target in self._departed:
            self._held = True  # for a worker of ours that is gone (stopping, restarting): keep it
        return False

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
            await _quietly(pubsub.aclose())
            raise
        self._pubsub = pubsub
        self._connected.set()

    async def _read_loop(self) -> None:
        delay = self.reconnect_initial
        me = asyncio.current_task()
        while True:
            if me is not None and me.cancelling():
                raise asyncio.CancelledError  # the client swallowed our cancel: we do not
            if self._pubsub is None:
                try:
                    await self._subscribe()
                except Exception as exc:
                    _reraise_if_cancelled(exc)
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
                self.reconnects += 1
                logger.warning("redis bus %s: reconnected to %s and resubscribed", self.channel, redact(self.url))
                for callback in self._reconnect_callbacks:
                    asyncio.ensure_future(self._guard(callback))
            try:
                while True:
                    item = await self._pubsub.get_message(timeout=None)
                    if item is None or item["type"] != "message":
                        continue
                    try:
                        full = self._on_frame(item["data"])
                    except Exception as exc:  # a bug guard: a frame must never cost the connection
                        self.bad_frames += 1
                        self._complain(None, f"a frame that failed to decode ({type(exc).__name__}: {exc})")
                        continue
                    if full:
                        await self.wait_for_room(full)  # a local subscriber is behind: wait for it
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _reraise_if_cancelled(exc)
                self._lost(exc)
                pubsub, self._pubsub = self._pubsub, None
                await _quietly(pubsub.aclose())
                await asyncio.sleep(delay)

    def _lost(self, exc: BaseException) -> None:
        if self._connected.is_set():
            self._connected.clear()
            self._release_room()
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
        if self._given_client is not None:
            self._client = self._given_client
        else:
            aioredis = _redis()
            self._client = aioredis.Redis.from_url(self.url, socket_connect_timeout=self.connect_timeout)
        try:
            await asyncio.wait_for(self._client.ping(), self.connect_timeout)
            if self._stream is not None:
                await asyncio.wait_for(self._join_stream(), self.connect_timeout)
            else:
                await self._subscribe()
        except (TimeoutError, Exception) as exc:
            if self._given_client is None:
                await _quietly(self._client.aclose())
            self._client = None
            raise BusUnavailableError(f"cannot reach Redis at {redact(self.url)}: {exc or type(exc).__name__}") from exc
        self._publishing = True
        await super().start()
        self._tasks = [
            asyncio.ensure_future(self._read_loop() if self._stream is None else self._read_stream_loop()),
            asyncio.ensure_future(self._publish_loop()),
        ]
        logger.info("redis bus %s: connected to %s", self.channel, redact(self.url))

    async def stop(self, flush_timeout: float = 2.0) -> None:
        """Send what is queued (bounded by ``flush_timeout``), then disconnect (idempotent)."""
        if not self.running:
            return
        if self.outbox_size:
            try:
                await asyncio.wait_for(self._drained.wait(), flush_timeout)
            except TimeoutError:
                pass
        if self.outbox_size:
            logger.warning("redis bus %s: %d message(s) not sent before stop", self.channel, self.outbox_size)
            self._outbox.clear()
            self._unsent = None
        self._release_room()
        if self._stream is not None and self._client is not None:
            # Before the reader is cancelled: a blocking read cut short leaves its connection in
            # a state the client may hand out again.
            if self._ack_task is not None:
                # An XACK in flight: let it land (the client is closed below).
                await asyncio.wait({self._ack_task}, timeout=flush_timeout)
                self._ack_task = None
            await _quietly(self._flush_acks(delay=False))
            await _quietly(self._stream.close(self._client))
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: a task that swallows its cancel (inside the client) is not waited for ever.
            _, stuck = await asyncio.wait(self._tasks, timeout=flush_timeout + 3.0)
            if stuck:
                logger.warning("redis bus %s: %d task(s) did not stop; leaving them", self.channel, len(stuck))
        self._tasks = []
        if self._pubsub is not None:
            await _quietly(self._pubsub.aclose())
            self._pubsub = None
        if self._client is not None and self._given_client is None:
            await _quietly(self._client.aclose())
        self._client = None
        self._connected.clear()
        await super().stop()

    def __repr__(self) -> str:
        state = "connected" if self.connected else ("running" if self.running else "stopped")
        return f"<RedisBus {redact(self.url)} channel={self.channel} {state}>"


def _reraise_if_cancelled(exc: BaseException) -> None:
    """A task cancelled inside the Redis client may see another exception instead of the
    CancelledError (the client turns it into a connection error): it is still a cancel, and
    going on would keep ``stop()`` waiting for ever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc


def _client_url(client: Any) -> str:
    """A description of a given client's server (for logs; never its password)."""
    try:
        kwargs = client.connection_pool.connection_kwargs
        if "path" in kwargs:
            return f"unix://{kwargs['path']}"
        return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"
    except AttributeError:
        return "redis://(given client)"


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:
        logger.debug("ignored an error while closing", exc_info=True)
