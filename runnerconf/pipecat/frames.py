"""Frames <-> bus payloads, for pipecat pipelines on a runnerconf bus.

What reaches a pipeline's sink is sent to its ``send_to`` worker as the payload of a data
message, and the payload of a data message sent to the pipeline is pushed into it as a frame.
A *converter* says how, for the frame types it knows:

* ``to_payload(frame)`` returns the payload for a frame, or ``None`` when the frame is not its kind;
* ``from_payload(payload)`` returns a frame for a payload, or ``None``.

Converters are asked in order: a worker's own (``converters:`` in a topology), then those
registered with :func:`register_converter`, then :class:`TextConverter` (text frames as text, and
text as ``TextFrame``). A frame no converter takes stays in the pipeline; a payload no converter
takes is dropped with a warning (once per payload type). On the in-process bus a payload may be a
pipecat ``Frame`` itself: it is pushed as it is.

Example, transcriptions as mappings::

    from pipecat.frames.frames import TranscriptionFrame
    from runnerconf.pipecat.frames import register_converter

    class Transcriptions:
        def to_payload(self, frame):
            if isinstance(frame, TranscriptionFrame):
                return {"transcript": frame.text, "user": frame.user_id}
            return None

        def from_payload(self, payload):
            if isinstance(payload, dict) and "transcript" in payload:
                return TranscriptionFrame(payload["transcript"], payload.get("user", ""), "")
            return None

    register_converter(Transcriptions())     # or, per worker: converters: [myapp.frames:Transcriptions]
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from runnerconf.pipecat import INSTALL_HINT

try:
    from pipecat.frames.frames import Frame, TextFrame
except ImportError as exc:  # pragma: no cover - the extra is a test dependency
    raise ImportError(f"{INSTALL_HINT} ({exc})") from exc

__all__ = ["FrameCodec", "FrameConverter", "TextConverter", "register_converter", "registered_converters"]

logger = logging.getLogger(__name__)


@runtime_checkable
class FrameConverter(Protocol):
    """Turns frames of the types it knows into bus payloads and back (either method may be left out)."""

    def to_payload(self, frame: Frame) -> Any | None: ...

    def from_payload(self, payload: Any) -> Frame | None: ...


class TextConverter:
    """Text frames (``TextFrame`` and its subclasses) as their text; a string as a ``TextFrame``."""

    def to_payload(self, frame: Frame) -> Any | None:
        return frame.text if isinstance(frame, TextFrame) else None

    def from_payload(self, payload: Any) -> Frame | None:
        return TextFrame(text=payload) if isinstance(payload, str) else None


_REGISTERED: list[Any] = []


def register_converter(converter: Any) -> Any:
    """Ask ``converter`` (an object, or a class built without arguments) for every pipecat
    pipeline of this process, before the built-in text converter. Returns it (a decorator too)."""
    _REGISTERED.append(_instance(converter))
    return converter


def registered_converters() -> list[Any]:
    """The converters registered with :func:`register_converter`, in order."""
    return list(_REGISTERED)


def _instance(converter: Any) -> Any:
    obj = converter() if isinstance(converter, type) else converter
    if not (callable(getattr(obj, "to_payload", None)) or callable(getattr(obj, "from_payload", None))):
        raise TypeError(f"{converter!r} is not a frame converter: it has neither to_payload() nor from_payload()")
    return obj


class FrameCodec:
    """The converters of one pipeline, asked in order (see the module's docstring)."""

    def __init__(self, converters: Iterable[Any] = ()) -> None:
        chain = [_instance(c) for c in converters] + registered_converters() + [TextConverter()]
        self._encoders = [c.to_payload for c in chain if callable(getattr(c, "to_payload", None))]
        self._decoders = [c.from_payload for c in chain if callable(getattr(c, "from_payload", None))]
        self._unreadable: set[type] = set()

    def to_payload(self, frame: Frame) -> Any | None:
        """The payload for ``frame``, or None when no converter takes it."""
        for encode in self._encoders:
            payload = encode(frame)
            if payload is not None:
                return payload
        return None

    def from_payload(self, payload: Any) -> Frame | None:
        """The frame for ``payload`` (a frame stays itself), or None, warned once per payload type."""
        if isinstance(payload, Frame):
            return payload
        for decode in self._decoders:
            frame = decode(payload)
            if frame is not None:
                if not isinstance(frame, Frame):
                    raise TypeError(f"a converter returned {type(frame).__name__}, not a pipecat Frame")
                return frame
        kind = type(payload)
        if kind not in self._unreadable:
            self._unreadable.add(kind)
            logger.warning("no frame converter takes a payload of type %s: dropped (register one, see runnerconf.pipecat.frames)", kind.__name__)
        return None
