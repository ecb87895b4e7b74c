"""Every example in configs/ loads, resolves, builds and runs as it is."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from runnerconf.config import build_runner, build_runners, load_topology, resolve

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def load(path: Path):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        topology = load_topology(path, environ={})
    return topology, [str(w.message) for w in record]


def test_there_are_examples() -> None:
    assert {p.name for p in CONFIGS} >= {"hello.yaml", "support-bot.yaml", "legacy.yaml", "processes.yaml", "distributed.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
async def test_example_loads_resolves_and_builds(path: Path) -> None:
    topology, warned = load(path)
    assert bool(warned) == (path.name == "legacy.yaml")
    resolve(topology)
    runners = await build_runners(topology) if topology.runners else [await build_runner(topology)]
    built = {w.name for r in runners for w in map(r.get_worker, [x.name for x in topology.all_workers()]) if w}
    assert built == {w.name for w in topology.all_workers()}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("hello.yaml", [">> Hello, world!", ">> Hello, runnerconf!", ">> Hello, bots!"]),
        ("support-bot.yaml", [">> planner ready with model small", ">> HELLO, ADA!", ">> HELLO, GRACE!"]),
        ("legacy.yaml", ["legacy> still", "legacy> works"]),
        ("processes.yaml", []),  # its output goes to the log, under each worker's name
    ],
)
async def test_self_ending_examples_run_to_the_end(name: str, expected: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    topology, _ = load(ROOT / "configs" / name)
    topology.runner.handle_sigint = False
    runner = await build_runner(topology)
    await runner.run(auto_end=topology.runner.auto_end)
    assert sorted(capsys.readouterr().out.splitlines()) == sorted(expected)
    assert runner.failed == []
    assert set(runner.results) == {w.name for w in topology.workers}
    assert {r.outcome for r in runner.results.values()} == {"finished"}
