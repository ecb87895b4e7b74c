"""The network wire format: versioned JSON, only known message types, payloads as JSON values.

A frame is one JSON object: ``{"v": 1, "from": <bus id>, "messages": [...]}``; each message is
``{"type": <registered name>, "fields": {...}}``. Decoding looks the type up in a fixed registry
and builds the dataclass from its declared fields only: nothing on the wire can make a runner
import a module or build an arbitrary object. Local-only messages are never encoded.
"""

from __future__ import annotations

import dataclasses
import json
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from collections.abc import Callable, Iterable
from typing import Any

from runnerconf.bus.messages import (
    BusCancelMessage,
    BusCancelWorkerMessage,
    BusDataMessage,
    BusEndMessage,
    BusEndWorkerMessage,
    BusMessage,
    BusWorkerReadyMessage,
    BusWorkerRegistryMessage,
    WorkerRegistryEntry,
)

__all__ = [
    "WIRE_VERSION",
    "WireError",
    "decode_frame",
    "encode_frame",
    "encode_message",
    "frame_prefix",
    "join_frame",
    "register_message_type",
]

WIRE_VERSION = 1

_TYPES: dict[str, type[BusMessage]] = {}
#: Field names of each registered type, in declaration order (dataclasses.fields() is slow).
_FIELDS: dict[type[BusMessage], tuple[str, ...]] = {}
_KNOWN: dict[type[BusMessage], frozenset[str]] = {}
_HEADS: dict[type[BusMessage], bytes] = {}
def _reject(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


if c_make_encoder is not None:
    # json.dumps() builds its C encoder anew on every call: build one and keep it (it is the
    # costliest step of publishing a message). Compact, strict JSON (no NaN); no circular-reference
    # markers: a payload that contains itself ends in RecursionError, reported as a bad payload.
    _c_encode = c_make_encoder(None, _reject, encode_basestring, None, ":", ",", False, False, False)

    def _dumps(value: Any) -> str:
        return "".join(_c_encode(value, 0))

else:  # pragma: no cover - Pythons without the C accelerator
    _dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode  # type: ignore[assignment]


class WireError(ValueError):
    """A frame or message that cannot be encoded or decoded."""


def register_message_type(cls: type[BusMessage], name: str | None = None) -> type[BusMessage]:
    """Allow ``cls`` on the wire under ``name`` (default: the class name). Usable as a decorator.

    Its fields must hold JSON values. Local-only messages cannot be registered.
    """
    if cls.local:
        raise WireError(f"{cls.__name__} is local-only and never leaves the process")
    key = name or cls.__name__
    if _TYPES.get(key, cls) is not cls:
        raise WireError(f"another message type is already registered as {key!r}")
    _TYPES[key] = cls
    _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    _KNOWN[cls] = frozenset(_FIELDS[cls])
    _HEADS[cls] = b'{"type":' + json.dumps(key).encode() + b',"fields":'
    cls._wire_name = key  # type: ignore[attr-defined]
    return cls


for _cls in (
    BusDataMessage,
    BusEndMessage,
    BusCancelMessage,
    BusEndWorkerMessage,
    BusCancelWorkerMessage,
    BusWorkerReadyMessage,
    BusWorkerRegistryMessage,
):
    register_message_type(_cls)


def encode_message(message: BusMessage) -> bytes:
    """One message as JSON. WireError if it is not a wire type or its payload is not JSON."""
    cls = type(message)
    names = _FIELDS.get(cls)
    if names is None:
        raise WireError(f"{cls.__name__} is not a registered wire message type")
    fields = {n: getattr(message, n) for n in names}
    if cls is BusWorkerRegistryMessage:
        fields["workers"] = [dataclasses.asdict(e) for e in fields["workers"]]
    try:
        return _HEADS[cls] + _dumps(fields).encode() + b"}"
    except (TypeError, ValueError, RecursionError) as exc:
        raise WireError(f"{cls.__name__} does not hold JSON values only: {exc}") from exc


def frame_prefix(sender: str) -> bytes:
    """How every frame from ``sender`` starts (a bus skips its own echo by it, before decoding)."""
    return json.dumps({"v": WIRE_VERSION, "from": sender}, separators=(",", ":"))[:-1].encode() + b',"messages":['


def join_frame(sender: str, encoded: Iterable[bytes]) -> bytes:
    """A frame from messages already encoded with :func:`encode_message`, in order."""
    return frame_prefix(sender) + b",".join(encoded) + b"]}"


def encode_frame(sender: str, messages: Iterable[BusMessage]) -> bytes:
    """One frame carrying ``messages`` in order. WireError if a payload is not JSON."""
    return join_frame(sender, [encode_message(m) for m in messages])


def decode_frame(
    data: bytes | str, accept: Callable[[Any], bool] | None = None
) -> tuple[str, list[BusMessage | WireError]]:
    """The sender's bus id and its messages; an undecodable message is a WireError in the list.

    ``accept(target)`` (optional) says which targets matter here: messages for other targets are
    skipped before anything is built from them.

    Raises:
        WireError: the frame itself is not a valid frame of this version.
    """
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"not JSON: {exc}") from exc
    if not isinstance(body, dict) or body.get("v") != WIRE_VERSION:
        version = body.get("v") if isinstance(body, dict) else None
        raise WireError(f"not a runnerconf frame of version {WIRE_VERSION} (version {version!r})")
    sender, items = body.get("from"), body.get("messages")
    if not isinstance(sender, str) or not isinstance(items, list):
        raise WireError("a frame needs 'from' (a string) and 'messages' (a list)")
    if accept is not None:
        items = [i for i in items if not isinstance(i, dict) or not isinstance(i.get("fields"), dict) or accept(i["fields"].get("target"))]
    return sender, [_decode_message(item) for item in items]


def _decode_message(item: Any) -> BusMessage | WireError:
    try:
        cls = _TYPES.get(item["type"])
        fields = item["fields"]
    except (TypeError, KeyError):
        return WireError(f"a message must be an object with 'type' and 'fields', got {str(item)[:80]!r}")
    if cls is None:
        return WireError(f"unknown message type {item.get('type')!r}")
    if type(fields) is not dict:
        return WireError(f"the fields of a {cls.__name__} must be an object")
    if not fields.keys() <= _KNOWN[cls]:
        unknown = sorted(fields.keys() - _KNOWN[cls])
        return WireError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")
    try:
        if cls is BusWorkerRegistryMessage:
            fields = dict(fields)
            fields["workers"] = [WorkerRegistryEntry(**e) for e in fields.get("workers", [])]
            fields["removed"] = [str(n) for n in fields.get("removed", [])]
        message = cls(**fields)
    except (TypeError, ValueError) as exc:
        return WireError(f"bad {cls.__name__}: {exc}")
    target = message.target
    if type(message.source) is not str or not (target is None or type(target) is str):
        return WireError(f"bad {cls.__name__}: source and target must be strings")
    return message
