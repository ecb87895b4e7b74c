"""The network wire format: versioned JSON, only known message types, payloads as JSON values.

A frame is one JSON object: ``{"v": 1, "from": <bus id>, "messages": [...]}``; each message is
``{"type": <registered name>, "fields": {...}}``. Decoding looks the type up in a fixed registry
and builds the dataclass from its declared fields only: nothing on the wire can make a runner
import a module or build an arbitrary object. Local-only messages are never encoded.

What a peer sends is bounded: a frame of more than :data:`MAX_FRAME_BYTES` is refused unread,
JSON nested deeper than :data:`MAX_DEPTH` is refused, and a message whose fields do not have the
declared types is refused; each refusal is a :class:`WireError` (the caller skips and logs it).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from runnerconf.bus.messages import (
    BusActivateWorkerMessage,
    BusCancelMessage,
    BusCancelWorkerMessage,
    BusDataMessage,
    BusDeactivateWorkerMessage,
    BusEndMessage,
    BusEndWorkerMessage,
    BusFlushProgressMessage,
    BusJobCancelMessage,
    BusJobRequestMessage,
    BusJobResponseMessage,
    BusJobResponseUrgentMessage,
    BusJobStreamDataMessage,
    BusJobStreamEndMessage,
    BusJobStreamStartMessage,
    BusJobUpdateMessage,
    BusJobUpdateRequestMessage,
    BusJobUpdateUrgentMessage,
    BusMessage,
    BusTTSSpeakMessage,
    BusWorkerErrorMessage,
    BusWorkerReadyMessage,
    BusWorkerRegistryMessage,
    WorkerRegistryEntry,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_FRAME_BYTES",
    "MAX_REGISTRY_ENTRIES",
    "WIRE_VERSION",
    "WireError",
    "check_depth",
    "decode_frame",
    "encode_frame",
    "encode_message",
    "frame_prefix",
    "join_frame",
    "load_json",
    "register_message_type",
]

WIRE_VERSION = 1
#: Largest frame decoded (bigger ones are refused before parsing).
MAX_FRAME_BYTES = 8 << 20
#: Deepest nesting of JSON arrays and objects in a frame (the frame itself counts 3 levels).
MAX_DEPTH = 64
#: Most workers one registry message may list (a larger one is refused whole).
MAX_REGISTRY_ENTRIES = 20_000

_TYPES: dict[str, type[BusMessage]] = {}
#: Field names of each registered type, in declaration order (dataclasses.fields() is slow).
_FIELDS: dict[type[BusMessage], tuple[str, ...]] = {}
_KNOWN: dict[type[BusMessage], frozenset[str]] = {}
_HEADS: dict[type[BusMessage], bytes] = {}
#: Per type, per field: turns the decoded JSON value into the field's value (or raises).
_CONVERT: dict[type[BusMessage], dict[str, Callable[[Any], Any]]] = {}
_ENTRY_FIELDS = frozenset(f.name for f in dataclasses.fields(WorkerRegistryEntry))


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


def register_message_type(
    cls: type[BusMessage], name: str | None = None, *, convert: dict[str, Callable[[Any], Any]] | None = None
) -> type[BusMessage]:
    """Allow ``cls`` on the wire under ``name`` (default: the class name). Usable as a decorator.

    Its fields must hold JSON values; ``convert`` maps a field name to a function that turns the
    decoded JSON value back into the field's type (it raises ``ValueError``/``TypeError`` for a
    bad value). Local-only messages cannot be registered.
    """
    if cls.local:
        raise WireError(f"{cls.__name__} is local-only and never leaves the process")
    key = name or cls.__name__
    if _TYPES.get(key, cls) is not cls:
        raise WireError(f"another message type is already registered as {key!r}")
    _TYPES[key] = cls
    _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.init)
    _KNOWN[cls] = frozenset(_FIELDS[cls])
    _HEADS[cls] = b'{"type":' + json.dumps(key).encode() + b',"fields":'
    _CONVERT[cls] = dict(convert or {})
    cls._wire_name = key  # type: ignore[attr-defined]
    return cls


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise WireError if ``value`` nests lists and dicts deeper than ``limit``."""
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (list, dict)):
            if depth >= limit:
                raise WireError(f"nested deeper than {limit} levels")
            children = item.values() if isinstance(item, dict) else item
            todo.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))


def _optional(kind: type, what: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"{what} must be {kind.__name__} or null")
        return value

    return convert


def _job_status(value: Any) -> Any:
    from runnerconf.workers.job_context import JobStatus  # the runtime's, imported when needed

    return JobStatus(value)


def _entries(value: Any) -> list[WorkerRegistryEntry]:
    if not isinstance(value, list):
        raise TypeError("workers must be a list")
    if len(value) > MAX_REGISTRY_ENTRIES:
        raise ValueError(f"lists {len(value):,} workers, more than the {MAX_REGISTRY_ENTRIES:,} a registry message may")
    entries = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise TypeError("each worker must be an object with a name")
        # Keys a newer or older runner may add are left out (an entry has no 'runner' any more).
        entries.append(WorkerRegistryEntry(**{k: v for k, v in item.items() if k in _ENTRY_FIELDS}))
    return entries


def _names(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise TypeError("removed must be a list of names")
    if len(value) > MAX_REGISTRY_ENTRIES:
        raise ValueError(f"lists {len(value):,} removed workers, more than {MAX_REGISTRY_ENTRIES:,}")
    return value


_DICT = _optional(dict, "this field")
_JOB = {"job_id": _optional(str, "job_id")}

for _cls, _convert in (
    (BusDataMessage, {}),
    (BusEndMessage, {}),
    (BusCancelMessage, {}),
    (BusEndWorkerMessage, {}),
    (BusCancelWorkerMessage, {}),
    (BusWorkerReadyMessage, {}),
    (BusWorkerRegistryMessage, {"workers": _entries, "removed": _names}),
    (BusWorkerErrorMessage, {}),
    (BusActivateWorkerMessage, {"args": _DICT}),
    (BusDeactivateWorkerMessage, {}),
    (BusTTSSpeakMessage, {}),
    (BusFlushProgressMessage, {}),
    (BusJobRequestMessage, {**_JOB, "payload": _DICT}),
    (BusJobResponseMessage, {**_JOB, "status": _job_status, "response": _DICT}),
    (BusJobResponseUrgentMessage, {**_JOB, "status": _job_status, "response": _DICT}),
    (BusJobUpdateMessage, {**_JOB, "update": _DICT}),
    (BusJobUpdateUrgentMessage, {**_JOB, "update": _DICT}),
    (BusJobUpdateRequestMessage, _JOB),
    (BusJobCancelMessage, _JOB),
    (BusJobStreamStartMessage, {**_JOB, "data": _DICT}),
    (BusJobStreamDataMessage, {**_JOB, "data": _DICT}),
    (BusJobStreamEndMessage, {**_JOB, "data": _DICT}),
):
    register_message_type(_cls, convert=_convert)


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


def frame_sender(data: bytes) -> str | None:
    """The sender of a frame, read from its first bytes without decoding it (None if unreadable)."""
    head = data[:200]
    start = head.find(b'"from":"')
    if start < 0:
        return None
    end = head.find(b'"', start + 8)
    return head[start + 8 : end].decode(errors="replace") if end > 0 else None


def load_json(data: bytes | str, max_bytes: int = MAX_FRAME_BYTES) -> Any:
    """A frame's JSON, refused (WireError) when it is too big, too deep or not JSON."""
    if len(data) > max_bytes:
        raise WireError(f"frame of {len(data):,} bytes is over the limit of {max_bytes:,}")
    try:
        return json.loads(data)
    except RecursionError as exc:
        raise WireError(f"nested deeper than Python can read ({exc})") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"not JSON: {exc}") from exc


def decode_frame(
    data: bytes | str, accept: Callable[[Any], bool] | None = None, *, max_bytes: int = MAX_FRAME_BYTES
) -> tuple[str, list[BusMessage | WireError]]:
    """The sender's bus id and its messages; an undecodable message is a WireError in the list.

    ``accept(target)`` (optional) says which targets matter here: messages for other targets are
    skipped before anything is built from them.

    Raises:
        WireError: the frame itself is not a valid frame of this version, or is too big or too deep.
    """
    body = load_json(data, max_bytes)
    if not isinstance(body, dict) or body.get("v") != WIRE_VERSION:
        version = body.get("v") if isinstance(body, dict) else None
        raise WireError(f"not a runnerconf frame of version {WIRE_VERSION} (version {version!r})")
    sender, items = body.get("from"), body.get("messages")
    if not isinstance(sender, str) or not isinstance(items, list):
        raise WireError("a frame needs 'from' (a string) and 'messages' (a list)")
    if accept is not None:
        items = [i for i in items if not isinstance(i, dict) or not isinstance(i.get("fields"), dict) or accept(i["fields"].get("target"))]
    return sender, [decode_message(item) for item in items]


def decode_message(item: Any) -> BusMessage | WireError:
    """One decoded JSON message object as a message, or the WireError saying why not."""
    try:
        cls = _TYPES.get(item["type"])
        fields = item["fields"]
    except (TypeError, KeyError):
        return WireError(f"a message must be an object with 'type' and 'fields', got {str(item)[:80]!r}")
    if cls is None:
        return WireError(f"unknown message type {str(item.get('type'))[:80]!r}")
    if type(fields) is not dict:
        return WireError(f"the fields of a {cls.__name__} must be an object")
    if not fields.keys() <= _KNOWN[cls]:
        unknown = sorted(str(k)[:40] for k in fields.keys() - _KNOWN[cls])
        return WireError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")
    try:
        check_depth(fields, MAX_DEPTH - 3)
        converters = _CONVERT[cls]
        if converters:
            fields = {k: (converters[k](v) if k in converters else v) for k, v in fields.items()}
        message = cls(**fields)
    except (TypeError, ValueError) as exc:
        return WireError(f"bad {cls.__name__}: {str(exc)[:200]}")
    target = message.target
    if type(message.source) is not str or not (target is None or type(target) is str):
        return WireError(f"bad {cls.__name__}: source and target must be strings")
    return message
