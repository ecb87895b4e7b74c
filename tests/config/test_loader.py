"""load_topology: the file format, every kind of problem, the legacy key, variables, overrides."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from runnerconf.config import Topology, TopologyError, load_topology
from runnerconf.config.models import ClassWorkerConfig, FactoryWorkerConfig, PipelineWorkerConfig, ProcessorCall

ISSUE_EXAMPLE = """\
# yaml-language-server: $schema=../schema/topology.schema.json
version: 1
runner:
  name: support-bot
  handle_sigint: true
  handle_sigterm: true
  force_gc: false
  auto_end: true
  stop_timeout: 10s
bus:
  type: async_queue
workers:
  - name: greeter
    type: pipeline
    processors:
      - myapp.text:normalise
      - call: myapp.bot:reply
        params: {greeting: hello}
    send_to: printer
  - name: printer
    class: myapp.workers:Printer
    params: {prefix: ">> "}
  - name: planner
    factory: myapp.workers:make_planner
    params: {model: small}
    parent: greeter
"""


def problems(text: str, **kwargs: object) -> list[tuple[str, int, int, str, str]]:
    with pytest.raises(TopologyError) as exc:
        load_topology(text, filename="t.yaml", **kwargs)  # type: ignore[arg-type]
    return [(p.path, p.line, p.column, p.code, p.severity) for p in exc.value.problems]


def messages(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(TopologyError) as exc:
        load_topology(text, filename="t.yaml", **kwargs)  # type: ignore[arg-type]
    return [p.message for p in exc.value.problems]


def test_the_issue_example_loads_without_importing_anything() -> None:
    t = load_topology(ISSUE_EXAMPLE, filename="t.yaml")
    assert isinstance(t, Topology)
    assert t.runner.name == "support-bot" and t.runner.stop_timeout == 10.0 and t.runner.handle_sigterm
    greeter, printer, planner = t.workers
    assert isinstance(greeter, PipelineWorkerConfig)
    assert greeter.processors == ["myapp.text:normalise", ProcessorCall(call="myapp.bot:reply", params={"greeting": "hello"})]
    assert isinstance(printer, ClassWorkerConfig) and printer.class_ == "myapp.workers:Printer"
    assert isinstance(planner, FactoryWorkerConfig) and planner.parent == "greeter"
    assert t.source.locate(("workers", 2, "parent")).line == 26


def test_defaults() -> None:
    t = load_topology("workers: []")
    assert t.version == 1
    # SIGTERM is handled by default in topology files (docker stop, systemctl stop, Kubernetes).
    assert t.runner.name is None and t.runner.handle_sigint and t.runner.handle_sigterm
    assert t.runner.auto_end and t.runner.stop_timeout == 10.0 and t.runner.on_signal == "end"
    assert t.bus.type == "async_queue"


@pytest.mark.parametrize(
    ("value", "seconds"), [("500ms", 0.5), ("10s", 10.0), ("2m", 120.0), ("1h", 3600.0), (3, 3.0), (0.25, 0.25), ("1.5", 1.5)]
)
def test_durations(value: object, seconds: float) -> None:
    t = load_topology(f"runner: {{stop_timeout: {value!r}}}".replace("'", '"'))
    assert t.runner.stop_timeout == seconds


def test_every_problem_is_reported_with_its_place() -> None:
    text = """\
version: 1
runner:
  stop_timeout: soon
  handle_sigint: maybe
  auto_ned: true
bus: {type: kafak}
workers:
  - name: a
    class: m:C
    naem: 1
  - name: b
    type: pipelin
  - name: c
    class: m:C
    factory: m:f
  - name: a
    type: pipeline
    processors: [m:f, 3, {call: m:g, parms: 1}]
    send_to: zz
  - {name: d, class: m:C, parent: e}
  - {name: e, class: m:C, parent: d}
  - {name: f, class: nocolon}
  - {name: g}
"""
    assert problems(text) == [
        ("runner.stop_timeout", 3, 17, "duration", "error"),
        ("runner.handle_sigint", 4, 18, "bool-parsing", "error"),
        ("runner.auto_ned", 5, 3, "unknown-key", "error"),
        ("bus.type", 6, 13, "bus-type", "error"),
        ("workers[0].naem", 10, 5, "unknown-key", "error"),
        ("workers[1].type", 12, 11, "worker-kind", "error"),
        ("workers[2]", 13, 5, "worker-kind", "error"),
        ("workers[3].name", 16, 11, "duplicate-name", "error"),
        ("workers[3].processors[1]", 18, 23, "processor", "error"),
        ("workers[3].processors[2].parms", 18, 38, "unknown-key", "error"),
        ("workers[3].send_to", 19, 14, "unknown-worker", "error"),
        ("workers[4].parent", 20, 35, "parent-cycle", "error"),
        ("workers[6].class", 22, 22, "bad-format", "error"),
        ("workers[7]", 23, 5, "worker-kind", "error"),
    ]
    text_messages = messages(text)
    assert "expected a duration such as 500ms, 10s, 2m or a number of seconds, got 'soon'" in text_messages
    assert "unknown key 'auto_ned'; did you mean 'auto_end'?" in text_messages[2]
    assert "unknown bus type 'kafak'" in text_messages[3]
    assert "did you mean 'name'?" in text_messages[4]
    assert "unknown worker type 'pipelin'; did you mean 'pipeline'?" in text_messages[5]
    assert "has `class` and `factory`" in text_messages[6]
    assert "first at line 8" in text_messages[7]
    assert "no worker named 'zz'" in text_messages[10]
    assert "parents form a cycle: d -> e -> d" in text_messages[11]
    assert "expected an import path `module:attribute`" in text_messages[12]
    assert "needs one of `class`" in text_messages[13]


def test_problem_renders_as_file_line_col() -> None:
    with pytest.raises(TopologyError) as exc:
        load_topology("runner:\n  force_gc: 3x\n", filename="bot.yaml")
    assert str(exc.value) == "bot.yaml:2:13: error: runner.force_gc: expected true or false; got '3x'"


def test_legacy_key_warns_with_file_line_and_replacement(tmp_path: Path) -> None:
    f = tmp_path / "legacy.yaml"
    f.write_text("version: 1\nPipelineRunner:\n  name: old\nworkers: []\n")
    with pytest.warns(DeprecationWarning) as record:
        t = load_topology(f)
    assert t.runner.name == "old"
    (w,) = record
    assert str(f) in str(w.message) and "line 2" in str(w.message) and "'runner'" in str(w.message)
    assert (w.filename, w.lineno) == (str(f), 2)
    assert [(p.code, p.severity, p.line) for p in t.warnings] == [("deprecated-key", "warning", 2)]


def test_legacy_key_errors_are_placed_under_runner() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert problems("PipelineRunner:\n  nme: x\n") == [
            ("PipelineRunner", 1, 1, "deprecated-key", "warning"),
            ("runner.nme", 2, 3, "unknown-key", "error"),
        ]


def test_both_runner_keys_is_an_error() -> None:
    assert problems("runner: {}\nPipelineRunner: {}\n") == [("PipelineRunner", 2, 1, "legacy-and-runner", "error")]


def test_environment_variables() -> None:
    text = 'runner:\n  name: "${BOT:-bot}"\n  handle_sigterm: ${TERM_ON}\n  stop_timeout: ${GRACE:-2s}\n'
    t = load_topology(text, environ={"TERM_ON": "true"})
    assert (t.runner.name, t.runner.handle_sigterm, t.runner.stop_timeout) == ("bot", True, 2.0)
    assert [(v.name, v.default, v.required) for v in t.variables] == [
        ("BOT", "bot", False),
        ("TERM_ON", None, True),
        ("GRACE", "2s", False),
    ]
    assert problems(text, environ={}) == [("runner.handle_sigterm", 3, 19, "missing-variable", "error")]
    assert messages(text, environ={}) == [
        "variable TERM_ON is not set and has no default (write ${TERM_ON:-default})"
    ]
    # Keys are never interpolated; $$ is a literal dollar.
    t = load_topology('workers: [{name: w, class: "m:C", params: {"${X}": "a$$b"}}]', environ={})
    assert t.workers[0].params == {"${X}": "a$b"}  # type: ignore[union-attr]


def test_overrides_by_worker_name_and_their_errors() -> None:
    text = "workers:\n  - {name: greeter, class: m:C, params: {greeting: hello}}\n"
    t = load_topology(text, overrides=["workers.greeter.params.greeting=hi", "runner.auto_end=false", "runner.stop_timeout=1m"])
    assert t.workers[0].params == {"greeting": "hi"}  # type: ignore[union-attr]
    assert t.runner.auto_end is False and t.runner.stop_timeout == 60
    with pytest.raises(TopologyError) as exc:
        load_topology(text, filename="t.yaml", overrides=["workers.nobody.params.x=1", "runner.force_gc=perhaps"])
    assert [(p.file, p.path, p.code) for p in exc.value.problems] == [
        ("--set runner.force_gc=perhaps", "runner.force_gc", "bool-parsing"),
        ("--set workers.nobody.params.x=1", "workers.nobody.params.x", "bad-override"),
    ]
    assert "no item 'nobody' in workers (known: greeter)" in str(exc.value)
    with pytest.raises(ValueError, match="PATH=VALUE"):
        load_topology(text, overrides=["runner.auto_end"])


def test_paths_and_text(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("workers: []\n")
    assert load_topology(str(f)).source.file == str(f)
    assert load_topology(f).workers == []
    with pytest.raises(TopologyError) as exc:
        load_topology(str(tmp_path / "missing.yaml"))
    assert exc.value.problems[0].code == "file-not-found"
    assert load_topology("workers: []").source.file == "<string>"


def test_validation_never_imports_user_modules() -> None:
    import sys

    text = "workers:\n  - {name: a, class: tests.config.never_imported:Worker}\n"
    load_topology(text)
    assert "tests.config.never_imported" not in sys.modules


def test_external_workers_may_be_named_but_not_as_parents() -> None:
    from runnerconf.config.render import render_graph
    from runnerconf.config.selection import worker_closure

    text = """\
bus: {type: redis, wire: pipecat, external_workers: [pc-worker]}
workers:
  - {name: a, class: 'm:C', watch: [pc-worker], depends_on: [pc-worker]}
  - {name: p, type: pipeline, processors: ['m:f'], send_to: pc-worker}
"""
    topology = load_topology(text, environ={})
    assert worker_closure(topology, ["a"]) == {"a"}
    assert 'v2(["pc-worker"])' in render_graph(topology)
    with pytest.raises(TopologyError) as exc:
        load_topology(text + "  - {name: c, class: 'm:C', parent: pc-worker}\n", environ={})
    assert [(p.path, p.code) for p in exc.value.problems] == [("workers[2].parent", "unknown-worker")]
    with pytest.raises(TopologyError) as exc:
        load_topology(text.replace("external_workers: [pc-worker]", "external_workers: []"), environ={})
    assert {p.path for p in exc.value.problems} == {"workers[0].watch[0]", "workers[0].depends_on[0]", "workers[1].send_to"}
