"""The JSON Schema: committed copy up to date, examples valid, agreement with the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from runnerconf.config import TopologyError, load_topology, schema_json, topology_schema
from runnerconf.config.schema import SCHEMA_ID
from runnerconf.config.source import read_value

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "schema" / "topology.schema.json"
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def validator() -> jsonschema.Draft202012Validator:
    schema = topology_schema(installed=False)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_the_generated_one() -> None:
    assert COMMITTED.read_text() == schema_json(installed=False), "regenerate it: runnerconf schema -o schema/topology.schema.json"


def test_schema_is_draft_2020_12_with_id_titles_descriptions_defaults() -> None:
    schema = json.loads(COMMITTED.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID
    runner = schema["$defs"]["RunnerConfig"]["properties"]
    for key, prop in runner.items():
        assert prop.get("description"), key
        assert "default" in prop, key
    assert runner["stop_timeout"]["default"] == 10.0
    assert schema["$defs"]["PipelineWorkerConfig"]["properties"]["processors"]["examples"]
    assert schema["properties"]["PipelineRunner"]["deprecated"] is True


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_example_validates_against_the_schema(path: Path) -> None:
    validator().validate(read_value(path.read_text(), path.name))


GOOD: list[str] = [
    "workers: []",
    "version: 1\nrunner: {name: bot, stop_timeout: 500ms, cancel_timeout: 2}\n",
    "workers:\n  - {name: a, class: 'm:C', params: {x: 1}}\n  - {name: b, factory: 'm:f', parent: a}\n",
    "workers:\n  - {name: p, type: pipeline, processors: ['m:f', {call: 'm:g', params: {k: v}}], send_to: p2}\n"
    "  - {name: p2, type: pipeline, processors: ['m:f'], on_error: skip, frames: [1, 'x'], stop_when_done: true}\n",
    "PipelineRunner: {name: legacy}\n",
    "bus: {type: async_queue}\n",
    "bus: {}\n",
    "runner: {handle_sigterm: '${TERM:-true}', stop_timeout: '${GRACE:-5s}'}\n",
    "bus: {type: redis, url: 'redis://127.0.0.1:6379/0', channel: bots, reconnect: {initial: 50ms}}\n",
    "bus: {type: redis}\nrunners:\n  - {name: a, workers: [{name: x, class: 'm:C'}]}\n"
    "  - {name: b, handle_sigterm: true, workers: [{name: y, class: 'm:C', depends_on: [x]}]}\n",
    "workers:\n  - {name: c, type: command, command: [python3, x.py], restart: no, backoff: {initial: 1s}}\n",
]

BAD: list[str] = [
    "version: 2\n",
    "runner: {nme: x}\n",
    "runner: {stop_timeout: soon}\n",
    "runner: {stop_timeout: -1}\n",
    "runner: {on_signal: kill}\n",
    "runner: {handle_sigint: 3}\n",
    "bus: {type: kafka}\n",
    "workers:\n  - {name: a}\n",
    "workers:\n  - {name: a, class: 'm:C', factory: 'm:f'}\n",
    "workers:\n  - {name: a, type: pipeline}\n",
    "workers:\n  - {name: a, type: pipeline, processors: []}\n",
    "workers:\n  - {name: a, type: pipeline, processors: [3]}\n",
    "workers:\n  - {name: a, type: pipelin, processors: ['m:f']}\n",
    "workers:\n  - {name: a, class: nocolon}\n",
    "workers:\n  - {name: 'has space', class: 'm:C'}\n",
    "workers:\n  - {name: a, class: 'm:C', send_to: b}\n",
    "runner: {}\nPipelineRunner: {}\n",
    "extra: 1\n",
    "bus: {type: redis, url: 'http://x'}\n",
    "bus: {type: redis, chanel: x}\n",
    "runners:\n  - {workers: []}\n",
    "runners: []\nworkers: []\n",
    "runners:\n  - {name: a, nme: b}\n",
    "workers:\n  - {name: c, type: command, command: []}\n",
    "workers:\n  - {name: c, type: command, command: x, restart: maybe}\n",
]


def _model_accepts(text: str) -> bool:
    try:
        load_topology(text, environ={})
    except TopologyError:
        return False
    return True


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("text", GOOD)
def test_schema_and_models_agree_on_good_documents(text: str) -> None:
    doc: Any = read_value(text, "t.yaml")  # YAML 1.2, as check-jsonschema and editors read it
    assert validator().is_valid(doc)
    assert _model_accepts(text)


@pytest.mark.parametrize("text", BAD)
def test_schema_and_models_agree_on_bad_documents(text: str) -> None:
    doc: Any = read_value(text, "t.yaml")  # YAML 1.2, as check-jsonschema and editors read it
    assert not validator().is_valid(doc)
    assert not _model_accepts(text)
