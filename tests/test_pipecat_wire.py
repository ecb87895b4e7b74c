"""``wire: pipecat``: runnerconf's messages in pipecat's JSON, checked against pipecat-ai's own
``JSONMessageSerializer`` in both directions (the bus test of two runners is in
test_pipecat_interop.py)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from runnerconf.bus import messages as ours
from runnerconf.bus.serializers.pipecat import PipecatMessageSerializer
from runnerconf.bus.wire import WireError
from tests.conftest import require_pipecat

require_pipecat()

from pipecat.bus import messages as theirs  # noqa: E402
from pipecat.bus.serializers.json import JSONMessageSerializer as PipecatJSON  # noqa: E402
from pipecat.registry.types import WorkerRegistryEntry as PipecatEntry  # noqa: E402


@pytest.fixture
def ser() -> PipecatMessageSerializer:
    return PipecatMessageSerializer()


def test_what_pipecat_writes_is_read(ser: PipecatMessageSerializer) -> None:
    pc = PipecatJSON()
    cases = [
        (theirs.BusEndMessage(source="pc-runner", reason="bye"), ours.BusEndMessage, {"source": "pc-runner", "reason": "bye"}),
        (theirs.BusCancelWorkerMessage(source="r", target="w", reason="x"), ours.BusCancelWorkerMessage, {"target": "w", "reason": "x"}),
        (
            theirs.BusWorkerReadyMessage(source="w", runner="r", parent=None, active=True, bridged=False, started_at=1.5),
            ours.BusWorkerReadyMessage,
            {"runner": "r", "active": True, "started_at": 1.5},
        ),
        (theirs.BusActivateWorkerMessage(source="a", target="b", args={"k": [1, 2]}), ours.BusActivateWorkerMessage, {"args": {"k": [1, 2]}}),
    ]
    for pipecat_message, cls, expected in cases:
        _, (message,) = ser.decode(pc.serialize(pipecat_message))
        assert type(message) is cls, message
        for key, value in expected.items():
            assert getattr(message, key) == value, (key, message)

    registry = theirs.BusWorkerRegistryMessage(
        source="pc-runner", runner="pc-runner", workers=[PipecatEntry(name="bot", active=True, started_at=2.0), PipecatEntry(name="kid", parent="bot")]
    )
    _, (message,) = ser.decode(pc.serialize(registry))
    assert isinstance(message, ours.BusWorkerRegistryMessage)
    assert [(e.name, e.parent, e.active, e.started_at) for e in message.workers] == [("bot", None, True, 2.0), ("kid", "bot", False, None)]
    assert message.hello is False and message.full is False  # pipecat's runners do not say



@dataclass(kw_only=True)
class Chat(theirs.BusDataMessage):
    """How a pipecat worker sends data: a BusDataMessage dataclass of its own."""

    payload: Any = None


@dataclass(kw_only=True)
class Turn(theirs.BusDataMessage):
    text: str
    final: bool = True


def test_listed_pipecat_data_types_are_read_as_data() -> None:
    pc = PipecatJSON()
    ser = PipecatMessageSerializer(data_types=[f"{__name__}.Chat", f"{__name__}.Turn"])
    _, (message,) = ser.decode(pc.serialize(Chat(source="pc-worker", target="rc-worker", payload={"text": "hi", "n": 3})))
    assert type(message) is ours.BusDataMessage and message.payload == {"text": "hi", "n": 3} and message.target == "rc-worker"
    _, (message,) = ser.decode(pc.serialize(Turn(source="pc-worker", text="bye")))
    assert type(message) is ours.BusDataMessage and message.payload == {"text": "bye", "final": True}
    # Not listed: skipped, and the class is never looked up.
    _, (skipped,) = PipecatMessageSerializer().decode(pc.serialize(Chat(source="pc-worker", payload=1)))
    assert isinstance(skipped, WireError)


def test_what_runnerconf_writes_pipecat_reads(ser: PipecatMessageSerializer) -> None:
    pc = PipecatJSON()
    frame = ser.frames("bus-1", [ser.encode(ours.BusEndWorkerMessage(source="runner", target="bot", reason="stop"))])[0]
    message = pc.deserialize(frame)
    assert type(message) is theirs.BusEndWorkerMessage
    assert (message.source, message.target, message.reason) == ("runner", "bot", "stop")

    roster = ours.BusWorkerRegistryMessage(
        source="rc", runner="rc", workers=[ours.WorkerRegistryEntry(name="printer", active=True, started_at=3.0)], full=True
    )
    message = pc.deserialize(ser.frames("bus-1", [ser.encode(roster)])[0])
    assert type(message) is theirs.BusWorkerRegistryMessage and message.runner == "rc"
    assert message.workers == [PipecatEntry(name="printer", parent=None, active=True, bridged=False, started_at=3.0)]

    message = pc.deserialize(ser.frames("bus-1", [ser.encode(ours.BusDataMessage(source="rc-w", target="pc-w", payload=["a", {"b": None}]))])[0])
    assert type(message) is theirs.BusDataMessage and message.payload == ["a", {"b": None}]  # type: ignore[attr-defined]


def test_the_sender_is_told_from_the_first_bytes_for_echoes(ser: PipecatMessageSerializer) -> None:
    (frame,) = ser.frames("bus-xyz", [ser.encode(ours.BusCancelMessage(source="a"))])
    assert ser.frame_sender(frame) == "bus-xyz"
    sender, (message,) = ser.decode(frame)
    assert sender == "bus-xyz" and isinstance(message, ours.BusCancelMessage)
    assert ser.frame_sender(PipecatJSON().serialize(theirs.BusCancelMessage(source="a"))) is None


def test_nothing_on_the_wire_is_imported_or_built_but_the_allow_list(ser: PipecatMessageSerializer, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "evil_rc_module.py").write_text("raise SystemExit('imported!')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    frames = [
        {"__type__": "evil_rc_module.Boom", "__data__": {"source": "x"}},
        {"__type__": "pipecat.bus.messages.BusDataMessage", "__data__": {"source": "x", "payload": {"__type__": "evil_rc_module.Boom", "__data__": {}}}},
        {"__type__": "pipecat.bus.messages.BusFrameMessage", "__data__": {"source": "x"}},
        {"__type__": "pipecat.bus.messages.BusEndMessage", "__data__": {"source": 3}},
    ]
    for body in frames:
        _, (result,) = ser.decode(json.dumps(body).encode())
        assert isinstance(result, WireError), result
    assert "evil_rc_module" not in sys.modules
    for bad in (b"[]", b"not json", b'{"__type__": 1}', b"[" * 100_000):
        with pytest.raises(WireError):
            ser.decode(bad)
    with pytest.raises(WireError):
        PipecatMessageSerializer(max_frame_bytes=1024).decode(b'{"x": "' + b"a" * 2000 + b'"}')
    deep = {"__type__": "pipecat.bus.messages.BusDataMessage", "__data__": {"source": "x", "payload": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}
    _, (result,) = ser.decode(json.dumps(deep).encode())
    assert isinstance(result, WireError)


def test_local_and_unknown_messages_do_not_travel(ser: PipecatMessageSerializer) -> None:
    with pytest.raises(WireError):
        ser.encode(ours.BusAddWorkerMessage(source="a", worker=None))  # type: ignore[arg-type]
    with pytest.raises(WireError):
        ser.encode(ours.BusDataMessage(source="a", payload=object()))
