"""``PipecatMessageSerializer``: pipecat's JSON message format, for a bus shared with pipecat runners.

pipecat's ``JSONMessageSerializer`` publishes one message per frame, as the tagged form
``{"__type__": "pipecat.bus.messages.BusEndWorkerMessage", "__data__": {...}}`` (nested dataclasses
and enums tagged the same way, ``None`` fields left out). This serializer writes that form for
runnerconf's messages and reads it back -- but only for the message types both sides know, found
in a fixed allow-list by their tag: nothing a peer writes makes this side import a module or
build an object of a class it names.

What it adds to pipecat's form is one key in ``__data__``, ``runnerconf_bus``: the sending bus's
id, so that a bus skips the echo of its own messages (pipecat sets it as an attribute on the
messages it decodes, and otherwise ignores it).

Data from runnerconf crosses as pipecat's ``BusDataMessage`` with a ``payload`` attribute (any
JSON value), which a pipecat worker reads as ``message.payload``. pipecat's serializer writes only
dataclass fields, so a pipecat worker sends data as its own ``BusDataMessage`` subclass (a
dataclass, say ``myapp.messages.Chat`` with a ``payload`` field, or fields of its own): its tag is
listed in ``data_types`` -- compared as a string, never imported -- and it is read as a
runnerconf ``BusDataMessage`` whose payload is its ``payload`` field, or a mapping of its other
fields. Messages of any other type are skipped and counted by the bus, as on its own wire.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Iterable
from typing import Any

from runnerconf.bus.messages import BusDataMessage, BusMessage, BusWorkerRegistryMessage, WorkerRegistryEntry
from runnerconf.bus.serializers.base import MessageSerializer
from runnerconf.bus.wire import _CONVERT, _FIELDS, _TYPES, MAX_DEPTH, MAX_FRAME_BYTES, WireError, check_depth, load_json

__all__ = ["PIPECAT_MESSAGES_MODULE", "PipecatMessageSerializer"]

#: Where pipecat defines the bus messages (the tag of each is this module and the class name).
PIPECAT_MESSAGES_MODULE = "pipecat.bus.messages"
_ENTRY_TAG = "pipecat.registry.types.WorkerRegistryEntry"
_SENDER_KEY = "runnerconf_bus"
_SENDER_MARK = b'"' + _SENDER_KEY.encode() + b'":"'
#: Tag -> message class: the runnerconf wire's types, under pipecat's names.
_BY_TAG: dict[str, type[BusMessage]] = {f"{PIPECAT_MESSAGES_MODULE}.{cls.__name__}": cls for cls in set(_TYPES.values())}
#: Fields pipecat does not have: still written (a runnerconf peer on this wire needs them).
_ENTRY_FIELDS = tuple(f.name for f in dataclasses.fields(WorkerRegistryEntry))


class PipecatMessageSerializer(MessageSerializer):
    """Reads and writes pipecat's tagged JSON, one message a frame.

    Args:
        max_frame_bytes: Frames larger than this are refused before they are parsed.
        data_types: Tags (``module.Class``) of pipecat data messages to read as data.
    """

    batches = False

    def __init__(self, *, max_frame_bytes: int = MAX_FRAME_BYTES, data_types: Iterable[str] = ()) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.data_types = frozenset(data_types)

    def serialize(self, message: BusMessage) -> bytes:
        return self.encode(message)

    def deserialize(self, data: bytes) -> BusMessage | None:
        _, messages = self.decode(data)
        good = [m for m in messages if not isinstance(m, WireError)]
        return good[0] if good else None

    def encode(self, message: BusMessage) -> bytes:
        cls = type(message)
        names = _FIELDS.get(cls)
        if names is None or cls.local:
            raise WireError(f"{cls.__name__} is not a message type of the pipecat wire")
        data: dict[str, Any] = {"id": message.id, "name": message.name}
        for name in names:
            value = getattr(message, name)
            if value is not None:
                data[name] = value
        if cls is BusWorkerRegistryMessage:
            data["workers"] = [
                {"__type__": _ENTRY_TAG, "__data__": {k: v for k in _ENTRY_FIELDS if (v := getattr(e, k)) is not None}}
                for e in message.workers  # type: ignore[attr-defined]
            ]
        try:
            body = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise WireError(f"{cls.__name__} does not hold JSON values only: {exc}") from exc
        # The tag first and the data last, so that frames() can add the sender without parsing.
        return b'{"__type__":"' + f"{PIPECAT_MESSAGES_MODULE}.{cls.__name__}".encode() + b'","__data__":' + body.encode() + b"}"

    def frames(self, sender: str, encoded: list[bytes]) -> list[bytes]:
        mark = b'{"' + _SENDER_KEY.encode() + b'":' + json.dumps(sender).encode() + b","
        out = []
        for item in encoded:
            head, _, rest = item.partition(b'"__data__":{')
            out.append(head + b'"__data__":' + mark + rest)
        return out

    def frame_sender(self, data: bytes) -> str | None:
        start = data.find(_SENDER_MARK)
        if start < 0:
            return None
        start += len(_SENDER_MARK)
        end = data.find(b'"', start)
        return data[start:end].decode(errors="replace") if end > 0 else None

    def decode(self, data: bytes, accept: Callable[[Any], bool] | None = None) -> tuple[str | None, list[BusMessage | WireError]]:
        body = load_json(data, self.max_frame_bytes)
        if not isinstance(body, dict) or not isinstance(body.get("__type__"), str) or not isinstance(body.get("__data__"), dict):
            raise WireError("not a pipecat message: expected an object with '__type__' and '__data__'")
        fields: dict[str, Any] = body["__data__"]
        sender = fields.pop(_SENDER_KEY, None)
        sender = sender if isinstance(sender, str) else None
        if accept is not None and not accept(fields.get("target")):
            return sender, []
        tag = body["__type__"]
        if tag in self.data_types:
            return sender, [_data(tag, fields)]
        return sender, [_message(tag, fields)]


def _data(tag: str, fields: dict[str, Any]) -> BusMessage | WireError:
    """A pipecat data message of a listed type, as a runnerconf data message."""
    try:
        check_depth(fields, MAX_DEPTH - 2)
        own = {k: _untag(v) for k, v in fields.items() if k not in ("id", "name", "source", "target")}
        payload = own["payload"] if set(own) == {"payload"} else own
        message = BusDataMessage(source=fields.get("source"), target=fields.get("target"), payload=payload)  # type: ignore[arg-type]
    except (TypeError, ValueError, WireError) as exc:
        return WireError(f"bad {tag[:80]}: {str(exc)[:200]}")
    if type(message.source) is not str or not (message.target is None or type(message.target) is str):
        return WireError(f"bad {tag[:80]}: source and target must be strings")
    return message


def _message(tag: str, fields: dict[str, Any]) -> BusMessage | WireError:
    cls = _BY_TAG.get(tag)
    if cls is None:
        return WireError(f"message type {tag[:80]!r} is not one runnerconf reads on the pipecat wire")
    try:
        check_depth(fields, MAX_DEPTH - 2)
        known = set(_FIELDS[cls])
        # pipecat's own 'id' and 'name' (and any field a newer pipecat adds) are left out.
        values = {k: _untag(v) for k, v in fields.items() if k in known}
        if cls is BusWorkerRegistryMessage and "workers" in values:
            values["workers"] = [_entry(e) for e in _list(values["workers"])]
        converters = _CONVERT[cls]
        values = {k: (converters[k](v) if k in converters and k != "workers" else v) for k, v in values.items()}
        message = cls(**values)
    except (TypeError, ValueError, WireError) as exc:
        return WireError(f"bad {cls.__name__}: {str(exc)[:200]}")
    if type(message.source) is not str or not (message.target is None or type(message.target) is str):
        return WireError(f"bad {cls.__name__}: source and target must be strings")
    return message


def _untag(value: Any) -> Any:
    """A decoded JSON value with pipecat's tagged values read: bytes, and registry entries (kept
    tagged for :func:`_entry`); any other tag is refused."""
    if isinstance(value, list):
        return [_untag(v) for v in value]
    if isinstance(value, dict):
        if "__type__" in value and "__data__" in value:
            tag, data = value["__type__"], value["__data__"]
            if tag == "bytes" and isinstance(data, str):
                return base64.b64decode(data, validate=True)
            if tag == _ENTRY_TAG:
                return value
            raise WireError(f"a value of type {str(tag)[:80]!r} that runnerconf does not read")
        return {k: _untag(v) for k, v in value.items()}
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("workers must be a list")
    from runnerconf.bus.wire import MAX_REGISTRY_ENTRIES

    if len(value) > MAX_REGISTRY_ENTRIES:
        raise ValueError(f"lists {len(value):,} workers, more than the {MAX_REGISTRY_ENTRIES:,} a registry message may")
    return value


def _entry(value: Any) -> WorkerRegistryEntry:
    data = value.get("__data__") if isinstance(value, dict) and value.get("__type__") == _ENTRY_TAG else value
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise TypeError("each worker must be an object with a name")
    return WorkerRegistryEntry(**{k: data[k] for k in _ENTRY_FIELDS if k in data})
