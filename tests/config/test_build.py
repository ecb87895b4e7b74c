"""resolve() and build_runner(): imports, signatures, wiring, and their errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from runnerconf.config import TopologyError, build_runner, load_topology, resolve, run_topology
from runnerconf.config.build import import_string
from runnerconf.pipeline.worker import PipelineWorker
from runnerconf.workers.runner import WorkerRunner

from .sample_workers import Echo, Nameless

M = "tests.config.sample_workers"


def errors(text: str) -> list[tuple[str, int, str, str]]:
    topology = load_topology(text, filename="t.yaml")
    with pytest.raises(TopologyError) as exc:
        resolve(topology)
    return [(p.path, p.line, p.code, p.message) for p in exc.value.problems]


async def test_build_every_kind_and_wire_parents() -> None:
    text = f"""
runner: {{name: r1, stop_timeout: 2s, handle_sigint: false, on_signal: cancel}}
workers:
  - {{name: echo, class: "{M}:Echo", params: {{prefix: ">", times: 2}}}}
  - {{name: nameless, class: "{M}:Nameless", params: {{level: 3}}, parent: echo, active: false}}
  - {{name: made, factory: "{M}:make_echo", params: {{prefix: "f"}}}}
  - {{name: made-async, factory: "{M}:make_echo_async", parent: made}}
  - name: pipe
    type: pipeline
    processors: ["{M}:add", {{call: "{M}:add", params: {{amount: 10}}}}, {{call: "{M}:Multiply", params: {{factor: 2}}}}]
    frames: [1, 2]
    stop_when_done: true
"""
    topology = load_topology(text)
    runner = await build_runner(topology)
    assert isinstance(runner, WorkerRunner)
    assert (runner.name, runner.stop_timeout, runner.handle_sigint, runner.on_signal) == ("r1", 2.0, False, "cancel")
    echo = runner.get_worker("echo")
    assert isinstance(echo, Echo) and (echo.prefix, echo.times) == (">", 2)
    nameless = runner.get_worker("nameless")
    assert isinstance(nameless, Nameless) and nameless.level == 3 and nameless.parent == "echo"
    assert nameless.active is False
    assert [c.name for c in echo.children] == ["nameless"]
    made_async = runner.get_worker("made-async")
    assert isinstance(made_async, Echo) and made_async.prefix == "af" and made_async.parent == "made"
    pipe = runner.get_worker("pipe")
    assert isinstance(pipe, PipelineWorker)
    outputs: list[int] = []

    async def capture(frame: int) -> None:
        outputs.append(frame)

    pipe.on_output = capture  # type: ignore[method-assign]
    await runner.end()
    await runner.run()
    assert outputs == [24, 26]  # (1 + 1 + 10) * 2, (2 + 1 + 10) * 2


async def test_run_topology_runs_until_auto_end() -> None:
    text = f"""
runner: {{handle_sigint: false}}
workers:
  - {{name: pipe, type: pipeline, processors: ["{M}:add"], frames: [1], stop_when_done: true}}
"""
    runner = await run_topology(load_topology(text))
    assert runner.results["pipe"].outcome == "finished"


def test_import_errors_name_worker_path_and_line() -> None:
    text = f"""workers:
  - {{name: a, class: "nosuchmodule.sub:W"}}
  - {{name: b, class: "{M}:Missing"}}
  - {{name: c, class: "{M}:NotAWorker"}}
  - {{name: d, factory: "{M}:NOT_CALLABLE"}}
  - {{name: e, class: "{M}:Echo"}}
  - {{name: f, class: "{M}:Echo", params: {{prefix: x, colour: red}}}}
  - {{name: h, type: pipeline, processors: ["{M}:NOT_CALLABLE", {{call: "{M}:add", params: {{amont: 1}}}}, {{call: "{M}:Multiply"}}]}}
"""
    found = errors(text)
    assert [(p, line, code) for p, line, code, _ in found] == [
        ("workers[0].class", 2, "import"),
        ("workers[1].class", 3, "import"),
        ("workers[2].class", 4, "not-a-worker"),
        ("workers[3].factory", 5, "not-callable"),
        ("workers[4].params", 6, "bad-params"),
        ("workers[5].params", 7, "bad-params"),
        ("workers[6].processors[0]", 8, "bad-params"),
        ("workers[6].processors[1]", 8, "bad-params"),
        ("workers[6].processors[2]", 8, "bad-params"),
    ]
    msgs = [m for *_, m in found]
    assert msgs[0] == "worker 'a': cannot import module 'nosuchmodule.sub': no module named 'nosuchmodule'"
    assert msgs[1] == f"worker 'b': module '{M}' has no attribute 'Missing'"
    assert msgs[2] == f"worker 'c': '{M}:NotAWorker' is not a BaseWorker subclass (it is the class NotAWorker)"
    assert "missing a required argument: 'prefix'" in msgs[4]
    assert "unexpected keyword argument 'colour'" in msgs[5]
    assert "not callable" in msgs[6]
    assert "unexpected keyword argument 'amont'" in msgs[7]
    assert "missing a required argument: 'factor'" in msgs[8]


def test_a_module_that_raises_on_import_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_mod.py").write_text("raise RuntimeError('bad config at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ((_, line, code, message),) = errors('workers:\n  - {name: a, class: "broken_mod:W"}\n')
    assert (line, code) == (2, "import")
    assert message == "worker 'a': importing module 'broken_mod' raised RuntimeError: bad config at import"
    sys.modules.pop("broken_mod", None)


def test_modules_beside_the_topology_are_importable(tmp_path: Path) -> None:
    (tmp_path / "beside_topology.py").write_text(
        "from runnerconf.workers.base_worker import BaseWorker\nclass W(BaseWorker):\n    pass\n"
    )
    f = tmp_path / "t.yaml"
    f.write_text('workers:\n  - {name: a, class: "beside_topology:W"}\n')
    try:
        plan = resolve(load_topology(f))
        assert plan.workers[0].target.__name__ == "W"
        assert str(tmp_path) not in sys.path  # found without putting the directory on sys.path
    finally:
        sys.modules.pop("beside_topology", None)


async def test_construction_failures_name_the_worker() -> None:
    text = f"""workers:
  - {{name: ok, class: "{M}:Echo", params: {{prefix: x}}}}
  - {{name: boom, class: "{M}:Exploding"}}
  - {{name: nothing, factory: "{M}:make_nothing"}}
"""
    with pytest.raises(TopologyError) as exc:
        await build_runner(load_topology(text, filename="t.yaml"))
    assert [(p.path, p.line, p.code) for p in exc.value.problems] == [
        ("workers[1].class", 3, "build-failed"),
        ("workers[2].factory", 4, "build-failed"),
    ]
    assert f"worker 'boom': {M}:Exploding(...) raised RuntimeError: cannot connect" == exc.value.problems[0].message
    assert "returned an int, not a BaseWorker" in exc.value.problems[1].message


def test_import_string() -> None:
    assert import_string("os.path:join.__name__") == "join"
    with pytest.raises(Exception, match="format"):
        import_string("os.path")


def test_every_bus_option_reaches_the_bus() -> None:
    from runnerconf.config.build import build_bus

    local = build_bus(load_topology("bus: {max_queued: 7}\nworkers: []\n", environ={}))
    assert local.max_queued == 7
    pytest.importorskip("redis", reason="the redis extra is a test dependency")
    remote = build_bus(
        load_topology(
            "bus: {type: redis, url: 'redis://127.0.0.1:1/0', channel: c1, max_queued: 9, max_frame_bytes: 4096,"
            " max_batch: 3, max_buffer: 11, connect_timeout: 2s, reconnect: {initial: 20ms, max: 1s}}\nworkers: []\n",
            environ={},
        )
    )
    assert remote.max_queued == 9
    assert remote.serializer.max_frame_bytes == 4096
    seen = {k: v for k, v in vars(remote).items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    for value in ("c1", 3, 11, 2.0, 0.02, 1.0):
        assert value in seen.values(), (value, seen)
