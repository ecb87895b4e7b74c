"""The network wire format: versioned JSON, only known message types, payloads as JSON values.

A frame is one JSON object: ``{"v": 1, "from": <bus id>, "messages": [...]}``; each message is
``{"type": <registered name>, "fields": {...}}``. Decoding looks the type up in a fixed registry
and builds the dataclass from its declared fields only: nothing on the wire can make a runner
import a module or build an arbitrary object. Local-only messages are never encoded.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
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
    "join_frame",
    "register_message_type",
]

WIRE_VERSION = 1

_TYPES: dict[str, type[BusMessage]] = {}


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


def _encode(message: BusMessage) -> dict[str, Any]:
    name = getattr(type(message), "_wire_name", None)
    if name is None or _TYPES.get(name) is not type(message):
        raise WireError(f"{type(message).__name__} is not a registered wire message type")
    fields = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}
    if isinstance(message, BusWorkerRegistryMessage):
        fields["workers"] = [dataclasses.asdict(e) for e in message.workers]
    return {"type": name, "fields": fields}


def encode_message(message: BusMessage) -> bytes:
    """One message as JSON. WireError if it is not a wire type or its payload is not JSON."""
    try:
        return json.dumps(_encode(message), separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise WireError(f"{type(message).__name__} does not hold JSON values only: {exc}") from exc


def join_frame(sender: str, encoded: Iterable[bytes]) -> bytes:
    """A frame from messages already encoded with :func:`encode_message`, in order."""
    head = json.dumps({"v": WIRE_VERSION, "from": sender}, separators=(",", ":"))[:-1].encode()
    return head + b',"messages":[' + b",".join(encoded) + b"]}"


def encode_frame(sender: str, messages: Iterable[BusMessage]) -> bytes:
    """One frame carrying ``messages`` in order. WireError if a payload is not JSON."""
    return join_frame(sender, [encode_message(m) for m in messages])


def decode_frame(data: bytes | str) -> tuple[str, list[BusMessage | WireError]]:
    """The sender's bus id and its messages; an undecodable message is a WireError in the list.

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
    return sender, [_decode_message(item) for item in items]


def _decode_message(item: Any) -> BusMessage | WireError:
    if not isinstance(item, dict) or not isinstance(item.get("fields"), dict):
        return WireError(f"a message must be an object with 'type' and 'fields', got {str(item)[:80]!r}")
    cls = _TYPES.get(item.get("type"))  # type: ignore[arg-type]
    if cls is None:
        return WireError(f"unknown message type {item.get('type')!r}")
    fields = dict(item["fields"])
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(fields) - known
    if unknown:
        return WireError(f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}")
    try:
        if cls is BusWorkerRegistryMessage:
            fields["workers"] = [WorkerRegistryEntry(**e) for e in fields.get("workers", [])]
            fields["removed"] = [str(n) for n in fields.get("removed", [])]
        message = cls(**fields)
    except (TypeError, ValueError) as exc:
        return WireError(f"bad {cls.__name__}: {exc}")
    if not isinstance(message.source, str) or not (message.target is None or isinstance(message.target, str)):
        return WireError(f"bad {cls.__name__}: source and target must be strings")
    return message
