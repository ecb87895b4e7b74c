"""Redis Streams delivery for :class:`~runnerconf.bus.network.redis.RedisBus` (``delivery: stream``).

One stream per channel (its key is the channel's name): every bus adds its frames to it, and
reads it through a consumer group of its own, named after its runner(s), so that:

* a frame stays in the stream until its group has *acknowledged* it, which the bus does once its
  local subscribers have handled every message of it (``Receipt``);
* a runner that comes back (a restart, a lost connection, Redis restarted with persistence on)
  reads its own pending frames first, then what was added while it was away: nothing is lost;
* frames read twice (a pending one after a crash, or one a publisher retried after a lost reply)
  are handed to subscribers once: each carries its sender's ``bus id:sequence`` tag, and the bus
  remembers the recent tags (at-least-once on the wire, exactly once to handlers where the tag was
  seen);
* the stream is bounded: ``MAXLEN ~ max_len`` on every add, and ``retention`` trims entries older
  than that; a runner away longer than the stream keeps is told how many frames it missed.

``runnerconf down`` and other short-lived buses read with a group of their own that starts at the
end of the stream and is deleted when they stop.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

__all__ = ["StreamLink"]

logger = logging.getLogger(__name__)

_FRAME = b"f"
_TAG = b"n"
#: Trim by age at most this often (seconds): XTRIM is cheap, but not free.
_TRIM_EVERY = 1.0


def _entry_key(entry_id: Any) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def entry_time(entry_id: Any) -> float:
    """When Redis added the entry (its id's milliseconds), in Unix seconds."""
    return _entry_key(entry_id)[0] / 1000


class StreamLink:
    """One bus's view of the channel's stream: its group, what it adds, what it reads.

    Args:
        key: The stream's key (the channel).
        group: The consumer group (a runner's name), or None for a group of this bus alone that
            starts at the end of the stream and is deleted by :meth:`close`.
        max_len: ``MAXLEN ~`` on every add (None: no length bound).
        retention: Seconds an entry is kept (None: no age bound).
        count: Most entries read at once.
        block: Milliseconds a read waits for new entries.
    """

    def __init__(
        self,
        key: str,
        group: str | None,
        *,
        max_len: int | None = 100_000,
        retention: float | None = None,
        count: int = 512,
        block: int = 1000,
    ) -> None:
        self.key = key
        self.ephemeral = group is None
        self.group = group if group is not None else f"runnerconf-ephemeral-{uuid.uuid4().hex[:12]}"
        self.consumer = "reader"  # one reader per group: the group is a runner's
        self.max_len = max_len
        self.retention = retention
        self.count = count
        self.block = block
        self._pending_from: str | None = "0"  # first read the entries pending for us, then new ones
        self._trimmed_at = 0.0

    async def setup(self, client: Any) -> int | None:
        """Create the group (at the end of the stream) or find it again; read its pending entries
        first. Returns how many entries it missed while away (trimmed unread), 0 if none, None if
        Redis cannot tell."""
        from redis.exceptions import ResponseError

        self._pending_from = "0"
        try:
            await client.xgroup_create(self.key, self.group, id="$", mkstream=True)
            return 0
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        return await self._missed(client)

    async def _missed(self, client: Any) -> int | None:
        groups = await client.xinfo_groups(self.key)
        mine = next((g for g in groups if _text(g.get("name")) == self.group), None)
        stream = await client.xinfo_stream(self.key)
        first = stream.get("first-entry")
        if mine is None or not first:
            return 0
        last = mine.get("last-delivered-id") or b"0-0"
        if _entry_key(last) >= _entry_key(first[0]) or _entry_key(last) == (0, 0):
            return 0
        read, added, length = mine.get("entries-read"), stream.get("entries-added"), stream.get("length", 0)
        if read is None or added is None:
            return None
        return max(int(added) - int(read) - int(length), 0)

    async def add(self, client: Any, frames: Sequence[tuple[bytes, bytes]]) -> None:
        """Add ``(frame, tag)`` entries, in order, in one round trip (trimming as configured)."""
        pipe = client.pipeline(transaction=False)
        for frame, tag in frames:
            pipe.xadd(self.key, {_FRAME: frame, _TAG: tag}, maxlen=self.max_len, approximate=True)
        now = time.monotonic()
        if self.retention is not None and now - self._trimmed_at >= _TRIM_EVERY:
            self._trimmed_at = now
            cutoff = int((time.time() - self.retention) * 1000)
            pipe.xtrim(self.key, minid=f"{cutoff}-0", approximate=False)  # exact: at most once a second
        await pipe.execute()

    async def read(self, client: Any) -> list[tuple[Any, dict[bytes, bytes] | None]]:
        """The next entries for this group: its pending ones first, then new ones (waiting up to
        ``block`` ms). A pending entry trimmed meanwhile comes back with no fields."""
        if self._pending_from is not None:
            reply = await client.xreadgroup(self.group, self.consumer, {self.key: self._pending_from}, count=self.count)
            entries = reply[0][1] if reply else []
            if entries:
                self._pending_from = _text(entries[-1][0])
                return entries  # type: ignore[no-any-return]
            self._pending_from = None
        reply = await client.xreadgroup(self.group, self.consumer, {self.key: ">"}, count=self.count, block=self.block)
        return reply[0][1] if reply else []  # type: ignore[no-any-return]

    async def ack(self, client: Any, ids: Sequence[Any]) -> None:
        if ids:
            await client.xack(self.key, self.group, *ids)

    async def close(self, client: Any) -> None:
        """Delete the group of a short-lived bus (a runner's group stays, to resume)."""
        if self.ephemeral:
            await client.xgroup_destroy(self.key, self.group)


def frame_of(fields: dict[bytes, bytes] | None) -> tuple[bytes | None, bytes | None]:
    """An entry's frame and tag (None for an entry trimmed while pending)."""
    if not fields:
        return None, None
    return fields.get(_FRAME), fields.get(_TAG)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
