"""WorkerRegistry: local and remote workers, persistent watchers awaited in order, isolation."""

from __future__ import annotations

import asyncio
import logging

import pytest

from runnerconf.registry import WorkerReadyData, WorkerRegistry
from runnerconf.registry.types import WorkerRegistryEntry


def ready(name: str, runner: str = "r") -> WorkerReadyData:
    return WorkerReadyData(worker_name=name, runner=runner)


async def test_watchers_are_awaited_in_order_inside_register_and_fire_at_once_when_ready() -> None:
    reg = WorkerRegistry(runner_name="r")
    assert reg.runner_name == "r"
    seen: list[str] = []

    async def slow(data: WorkerReadyData) -> None:
        await asyncio.sleep(0.01)
        seen.append(f"slow:{data.worker_name}@{data.runner}")

    await reg.watch("a", slow)
    await reg.watch("a", lambda d: seen.append(f"sync:{d.worker_name}"))
    assert await reg.register(ready("a")) is True
    # Both ran, in order, before register() returned (as pipecat does).
    assert seen == ["slow:a@r", "sync:a"]
    assert await reg.register(ready("a")) is False  # known: nobody notified twice
    await reg.watch("a", lambda d: seen.append("immediate"))
    assert seen[-1] == "immediate"


async def test_watchers_are_persistent_idempotent_and_removable() -> None:
    reg = WorkerRegistry(runner_name="r")
    calls: list[str] = []

    async def handler(data: WorkerReadyData) -> None:
        calls.append(data.worker_name)

    await reg.watch("a", handler)
    await reg.watch("a", handler)  # once per (name, handler)
    await reg.register(ready("a"))
    assert calls == ["a"]
    reg.unregister("a")  # it finished ...
    await reg.register(ready("a"))  # ... and started again: the watcher fires again
    assert calls == ["a", "a"]
    reg.unwatch("a", handler)
    reg.unregister("a")
    await reg.register(ready("a"))
    assert calls == ["a", "a"]
    assert reg.watched() == 0


async def test_failing_watcher_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    reg = WorkerRegistry(runner_name="r")
    calls: list[str] = []

    def bad(data: WorkerReadyData) -> None:
        raise RuntimeError("sync boom")

    async def bad_async(data: WorkerReadyData) -> None:
        raise RuntimeError("async boom")

    await reg.watch("a", bad)
    await reg.watch("a", bad_async)
    await reg.watch("a", lambda d: calls.append("good"))
    with caplog.at_level(logging.ERROR):
        assert await reg.register(ready("a")) is True
    assert calls == ["good"]
    assert caplog.text.count("registry watcher") == 2
    assert "a" in reg


async def test_a_watcher_that_watches_again_during_notification_fires_once() -> None:
    reg = WorkerRegistry(runner_name="r")
    calls: list[str] = []

    async def handler(data: WorkerReadyData) -> None:
        calls.append("fired")
        await reg.watch("a", handler)  # already there: idempotent, no second call

    await reg.watch("a", handler)
    await reg.register(ready("a"))
    assert calls == ["fired"]  # the watch was there already: no second call, no loop


async def test_local_remote_entries_forget_and_wait_for() -> None:
    reg = WorkerRegistry(runner_name="mine")
    await reg.register(ready("w1", "mine"), entry=WorkerRegistryEntry(name="w1", parent=None, active=True, started_at=1.0))
    await reg.register(ready("w2", "other"))
    assert reg.local_workers == ["w1"] and reg.remote_workers == ["w2"]
    assert reg.get("w2") == WorkerReadyData(worker_name="w2", runner="other")
    assert reg.entry("w1") == WorkerRegistryEntry(name="w1", active=True, started_at=1.0)
    assert [e.name for e in reg.entries()] == ["w1"] and [e.name for e in reg.entries("other")] == ["w2"]
    waiter = asyncio.ensure_future(reg.wait_for("late", timeout=2))
    await asyncio.sleep(0)
    await reg.register(ready("late", "other"))
    assert (await waiter).runner == "other"
    assert sorted(reg.forget_runner("other")) == ["late", "w2"]
    assert reg.remote_workers == [] and len(reg) == 1
    with pytest.raises(TimeoutError):
        await reg.wait_for("never", timeout=0.01)
    assert reg.watched() == 0  # wait_for leaves no watcher behind


async def test_the_same_name_on_two_runners_is_kept_for_both_local_first(caplog: pytest.LogCaptureFixture) -> None:
    reg = WorkerRegistry(runner_name="mine")
    await reg.register(ready("x", "other"))
    with caplog.at_level(logging.WARNING):
        assert await reg.register(ready("x", "mine")) is True
    assert "registered on both" in caplog.text
    assert reg.get("x") == ready("x", "mine")
    reg.unregister("x")
    assert reg.get("x") == ready("x", "other")
