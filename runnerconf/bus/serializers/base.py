"""``MessageSerializer``: how a network bus turns messages into bytes and back.

Pipecat's interface is :meth:`~MessageSerializer.serialize` / :meth:`~MessageSerializer.deserialize`,
one message each. A network bus also uses the frame methods below, so that a serializer can pack
several messages into one published frame and tell who sent a frame (to skip the bus's own echo);
their defaults publish one message per frame, from an unknown sender.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from runnerconf.bus.messages import BusMessage
from runnerconf.bus.wire import WireError

__all__ = ["MessageSerializer"]


class MessageSerializer(ABC):
    """Encodes bus messages for a network bus and decodes what peers sent."""

    #: Whether :meth:`frames` packs several messages into one frame.
    batches: bool = False

    @abstractmethod
    def serialize(self, message: BusMessage) -> bytes:
        """One message as bytes (WireError if it cannot travel)."""

    @abstractmethod
    def deserialize(self, data: bytes) -> BusMessage | None:
        """One message from bytes; None when it is not a message this side knows."""

    # -- frames (what a network bus publishes) --------------------------------------------------

    def encode(self, message: BusMessage) -> bytes:
        """A message, encoded for :meth:`frames` (default: :meth:`serialize`)."""
        return self.serialize(message)

    def frames(self, sender: str, encoded: list[bytes]) -> list[bytes]:
        """What to publish for ``encoded`` messages sent by bus ``sender`` (default: one each)."""
        return encoded

    def frame_sender(self, data: bytes) -> str | None:
        """Who sent a frame, if that can be told before decoding it (to skip one's own echo)."""
        return None

    def decode(self, data: bytes, accept: Callable[[Any], bool] | None = None) -> tuple[str | None, list[BusMessage | WireError]]:
        """The sender (None if unknown) and the messages of one frame."""
        message = self.deserialize(data)
        return None, [message] if message is not None else []
