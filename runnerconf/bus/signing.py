"""Signed frames: HMAC-SHA256 over every frame a network bus publishes, checked before decoding.

A signed frame is one header line, then the frame as the serializer made it::

    RCS1.<key id>.<time ms>.<nonce>.<mac>\\n<frame>

* ``key id``: the first 8 hex digits of SHA-256 of the secret, so a receiver picks the key
  without trying each (the secret itself never travels);
* ``time ms``: when the frame was signed (Unix time, milliseconds);
* ``nonce``: 16 random bytes (hex), remembered for the freshness window so that a frame replayed
  within it is refused; outside it the time refuses it;
* ``mac``: HMAC-SHA256 with the secret over everything before it (the header up to the nonce,
  and the frame).

Several secrets may be accepted at once (key rotation): the first signs, every one verifies.
A frame with no signature, an unknown key, a wrong MAC, a time outside the window, or a nonce
seen before is refused with :class:`SignatureError` and never decoded.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections import deque
from collections.abc import Sequence

__all__ = ["MAGIC", "MIN_SECRET_LENGTH", "FrameSigner", "SignatureError", "key_id"]

MAGIC = b"RCS1."
#: Shortest secret accepted (a short one is guessed offline from one captured frame).
MIN_SECRET_LENGTH = 16
_HEADER_MAX = 128
#: Nonces remembered at most (the window bounds them too): a flood cannot grow memory for ever.
_MAX_NONCES = 1_000_000


class SignatureError(ValueError):
    """A frame that is not signed, or not signed right. ``reason`` is one word for counters."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def key_id(secret: bytes) -> bytes:
    """The key id of ``secret``: 8 hex digits of its SHA-256."""
    return hashlib.sha256(secret).hexdigest()[:8].encode()


class FrameSigner:
    """Signs frames with the first secret and verifies them with any.

    Args:
        secrets: The accepted secrets, the signing one first (each at least
            :data:`MIN_SECRET_LENGTH` characters).
        max_age: Seconds a frame stays valid after it was signed (and how far ahead of this
            clock it may be, for clock skew).
    """

    def __init__(self, secrets: Sequence[str | bytes], *, max_age: float = 60.0) -> None:
        if not secrets:
            raise ValueError("at least one secret is needed")
        keys = [s.encode() if isinstance(s, str) else bytes(s) for s in secrets]
        short = [i for i, k in enumerate(keys) if len(k) < MIN_SECRET_LENGTH]
        if short:
            raise ValueError(f"a bus secret needs at least {MIN_SECRET_LENGTH} characters")
        self._keys = {key_id(k): k for k in reversed(keys)}  # the signing key wins a clash
        self._signing = keys[0]
        self._signing_id = key_id(keys[0])
        self.max_age = max_age
        self._nonces: set[bytes] = set()
        self._order: deque[tuple[float, bytes]] = deque()

    def sign(self, frame: bytes, now: float | None = None) -> bytes:
        """``frame`` with its signature header."""
        ms = int((time.time() if now is None else now) * 1000)
        head = MAGIC + self._signing_id + b"." + str(ms).encode() + b"." + os.urandom(16).hex().encode() + b"."
        mac = hmac.new(self._signing, head + b"\n" + frame, hashlib.sha256).hexdigest().encode()
        return head + mac + b"\n" + frame

    @staticmethod
    def inner(data: bytes) -> bytes | None:
        """The frame inside a signed frame, unverified (None if it is not one)."""
        if not data.startswith(MAGIC):
            return None
        end = data.find(b"\n", 0, _HEADER_MAX)
        return data[end + 1 :] if end > 0 else None

    def verify(self, data: bytes, at: float | None = None) -> bytes:
        """The frame, if ``data`` is signed by an accepted key within the window and its nonce is
        new; ``at`` is when it was sent as the transport says (a stream entry's time), default now.

        Raises:
            SignatureError: with the reason (unsigned, malformed, unknown-key, bad-mac, expired, replayed).
        """
        if not data.startswith(MAGIC):
            raise SignatureError("unsigned", "a frame without a signature")
        end = data.find(b"\n", 0, _HEADER_MAX)
        if end < 0:
            raise SignatureError("malformed", "a signature header that does not end")
        parts = data[len(MAGIC) : end].split(b".")
        if len(parts) != 4:
            raise SignatureError("malformed", "a signature header of the wrong shape")
        kid, ms, nonce, mac = parts
        key = self._keys.get(kid)
        if key is None:
            raise SignatureError("unknown-key", f"a frame signed with an unknown key ({kid[:8].decode(errors='replace')})")
        expected = hmac.new(key, data[: end - len(mac)] + b"\n" + data[end + 1 :], hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(expected, mac):
            raise SignatureError("bad-mac", "a frame whose signature does not match")
        try:
            signed_at = int(ms) / 1000
        except ValueError:
            raise SignatureError("malformed", "a signature time that is not a number") from None
        now = time.time() if at is None else at
        if abs(now - signed_at) > self.max_age:
            raise SignatureError("expired", f"a frame signed {now - signed_at:.0f}s away from now (the window is {self.max_age:g}s)")
        self._remember(nonce, signed_at, now)
        return data[end + 1 :]

    def _remember(self, nonce: bytes, signed_at: float, now: float) -> None:
        order, nonces = self._order, self._nonces
        while order and (order[0][0] < now - 2 * self.max_age or len(order) >= _MAX_NONCES):
            nonces.discard(order.popleft()[1])
        if nonce in nonces:
            raise SignatureError("replayed", "a frame whose nonce was seen already (a replay)")
        nonces.add(nonce)
        order.append((signed_at, nonce))
