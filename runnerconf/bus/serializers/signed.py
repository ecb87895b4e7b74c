"""``SignedSerializer``: any serializer's frames, signed (see :mod:`runnerconf.bus.signing`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runnerconf.bus.messages import BusMessage
from runnerconf.bus.serializers.base import MessageSerializer
from runnerconf.bus.signing import FrameSigner, SignatureError
from runnerconf.bus.wire import WireError

__all__ = ["SignedSerializer"]


class SignedSerializer(MessageSerializer):
    """Wraps ``inner``: every frame it makes is signed, and a frame is decoded only once its
    signature holds (:class:`~runnerconf.bus.signing.SignatureError` otherwise)."""

    def __init__(self, inner: MessageSerializer, signer: FrameSigner) -> None:
        self.inner = inner
        self.signer = signer
        self.batches = inner.batches

    def serialize(self, message: BusMessage) -> bytes:
        return self.signer.sign(self.inner.serialize(message))

    def deserialize(self, data: bytes) -> BusMessage | None:
        try:
            return self.inner.deserialize(self.signer.verify(data))
        except SignatureError:
            return None

    def encode(self, message: BusMessage) -> bytes:
        return self.inner.encode(message)

    def frames(self, sender: str, encoded: list[bytes]) -> list[bytes]:
        return [self.signer.sign(frame) for frame in self.inner.frames(sender, encoded)]

    def frame_sender(self, data: bytes) -> str | None:
        frame = FrameSigner.inner(data)
        return self.inner.frame_sender(frame) if frame is not None else None

    def decode(
        self, data: bytes, accept: Callable[[Any], bool] | None = None, *, received_at: float | None = None
    ) -> tuple[str | None, list[BusMessage | WireError]]:
        return self.inner.decode(self.signer.verify(data, received_at), accept)
