"""``JSONMessageSerializer``: runnerconf's wire format behind pipecat's serializer interface.

Unlike pipecat's serializer of the same name, it never imports a module named by a peer and only
decodes message types registered with :func:`runnerconf.bus.wire.register_message_type`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runnerconf.bus.messages import BusMessage
from runnerconf.bus.serializers.base import MessageSerializer
from runnerconf.bus.wire import MAX_FRAME_BYTES, WireError, decode_frame, encode_message, frame_sender, join_frame

__all__ = ["JSONMessageSerializer"]

_SINGLE = "serializer"


class JSONMessageSerializer(MessageSerializer):
    """Versioned JSON frames of registered message types (see :mod:`runnerconf.bus.wire`).

    Args:
        max_frame_bytes: Frames larger than this are refused before they are parsed.
    """

    batches = True

    def __init__(self, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes

    def serialize(self, message: BusMessage) -> bytes:
        return join_frame(_SINGLE, [encode_message(message)])

    def deserialize(self, data: bytes) -> BusMessage | None:
        _, messages = decode_frame(data, max_bytes=self.max_frame_bytes)
        good = [m for m in messages if not isinstance(m, WireError)]
        return good[0] if good else None

    def encode(self, message: BusMessage) -> bytes:
        return encode_message(message)

    def frames(self, sender: str, encoded: list[bytes]) -> list[bytes]:
        return [join_frame(sender, encoded)]

    def frame_sender(self, data: bytes) -> str | None:
        return frame_sender(data)

    def decode(self, data: bytes, accept: Callable[[Any], bool] | None = None) -> tuple[str | None, list[BusMessage | WireError]]:
        return decode_frame(data, accept, max_bytes=self.max_frame_bytes)
