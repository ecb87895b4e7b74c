"""The JSON wire format: versioned frames, known types only, JSON payloads."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from runnerconf.bus.messages import (
    BusActivateWorkerMessage,
    BusAddWorkerMessage,
    BusJobCancelMessage,
    BusJobResponseMessage,
    BusCancelWorkerMessage,
    BusDataMessage,
    BusSystemMessage,
    BusWorkerRegistryMessage,
    WorkerRegistryEntry,
)
from runnerconf.bus.wire import MAX_DEPTH, WireError, decode_frame, encode_frame, register_message_type
from runnerconf.workers.job_context import JobStatus


def test_round_trip_of_every_built_in_kind() -> None:
    messages = [
        BusDataMessage(source="a", target="b", payload={"text": "hé", "n": [1, 2.5, None, True]}),
        BusCancelWorkerMessage(source="r", target="w", reason="bye"),
        BusWorkerRegistryMessage(
            source="r", runner="r", workers=[WorkerRegistryEntry(name="w", started_at=1.5)], removed=["old"], hello=True
        ),
        BusJobResponseMessage(source="h", target="r", job_id="j1", status=JobStatus.FAILED, response={"why": "no"}),
        BusActivateWorkerMessage(source="a", target="b", args={"metadata": {"call": 1}}),
        BusJobCancelMessage(source="r", target="h", job_id="j1", reason="enough"),
    ]
    sender, decoded = decode_frame(encode_frame("bus-1", messages))
    assert sender == "bus-1"
    assert decoded == messages
    assert decoded[3].status is JobStatus.FAILED  # type: ignore[union-attr]  # the enum, not a str
    assert decoded[1].system  # type: ignore[union-attr]  # priority class survives the trip


def test_custom_message_types_must_be_registered() -> None:
    @dataclass(kw_only=True, slots=True)
    class Urgent(BusSystemMessage):
        level: int = 0

    with pytest.raises(WireError, match="not a registered wire message type"):
        encode_frame("b", [Urgent(source="a", level=3)])
    register_message_type(Urgent, "test.Urgent")
    _, (decoded,) = decode_frame(encode_frame("b", [Urgent(source="a", level=3)]))
    assert decoded == Urgent(source="a", level=3)
    with pytest.raises(WireError, match="already registered"):
        register_message_type(BusDataMessage, "test.Urgent")
    with pytest.raises(WireError, match="local-only"):
        register_message_type(BusAddWorkerMessage)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"[]", "not a runnerconf frame"),
        (b'{"v": 2, "from": "x", "messages": []}', "version 2"),
        (b'{"v": 1, "from": 3, "messages": []}', "needs 'from'"),
        (b"\xff", "not JSON"),
    ],
)
def test_bad_frames(frame: bytes, error: str) -> None:
    with pytest.raises(WireError, match=error):
        decode_frame(frame)


def test_bad_messages_are_reported_one_by_one_never_built() -> None:
    frame = (
        b'{"v":1,"from":"x","messages":['
        b'{"type":"builtins.eval","fields":{"source":"1+1"}},'
        b'{"type":"BusDataMessage","fields":{"source":"x","extra":1}},'
        b'{"type":"BusWorkerRegistryMessage","fields":{"source":"r","runner":"r","workers":[{"name":7}]}},'
        b'{"type":"BusJobResponseMessage","fields":{"source":"h","job_id":"j","status":"exploded"}},'
        b'{"type":"BusWorkerRegistryMessage","fields":{"source":"r","runner":"r","workers":[{"name":"w","runner":"r"}]}},'
        b'{"type":"BusDataMessage","fields":{"source":"ok","payload":1}}]}'
    )
    _, items = decode_frame(frame)
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["WireError", "WireError", "WireError", "WireError", "BusWorkerRegistryMessage", "BusDataMessage"]
    # An entry key an older runner sent (`runner`) is left out, never passed on.
    assert items[4].workers == [WorkerRegistryEntry(name="w")]  # type: ignore[union-attr]
    assert "unknown message type 'builtins.eval'" in str(items[0])


def test_hostile_frames_are_refused_without_harm() -> None:
    with pytest.raises(WireError, match="over the limit"):
        decode_frame(b"[" * 2000, max_bytes=1000)
    with pytest.raises(WireError, match="nested deeper"):
        decode_frame(b'{"v":1,"from":"x","messages":' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    deep = b'{"type":"BusDataMessage","fields":{"source":"x","payload":' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}}"
    _, (item,) = decode_frame(b'{"v":1,"from":"x","messages":[' + deep + b"]}")
    assert isinstance(item, WireError) and "nested deeper" in str(item)
    shallow = b'{"type":"BusDataMessage","fields":{"source":"x","payload":[[[1]]]}}'
    _, (ok,) = decode_frame(b'{"v":1,"from":"x","messages":[' + shallow + b"]}")
    assert ok == BusDataMessage(source="x", payload=[[[1]]])
