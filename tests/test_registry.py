"""WorkerRegistry: watchers, isolation, pruning."""

from __future__ import annotations

import asyncio
import logging

import pytest

from runnerconf.bus import WorkerRegistryEntry
from runnerconf.registry import WorkerRegistry


def entry(name: str, runner: str = "r") -> WorkerRegistryEntry:
    return WorkerRegistryEntry(name=name, runner=runner)


async def test_watch_fires_on_registration_and_at_once_when_already_ready() -> None:
    reg = WorkerRegistry("r")
    seen: list[str] = []
    reg.watch("a", lambda e: seen.append(f"sync:{e.name}"))

    async def later(e: WorkerRegistryEntry) -> None:
        seen.append(f"async:{e.name}")

    reg.watch("a", later)
    assert seen == []
    assert reg.register(entry("a")) is True
    assert reg.register(entry("a")) is False  # known as is: nobody notified twice
    await asyncio.sleep(0)
    assert seen == ["sync:a", "async:a"]
    reg.watch("a", lambda e: seen.append("immediate"))
    assert seen[-1] == "immediate"


async def test_watch_is_idempotent_per_handler_and_one_shot() -> None:
    reg = WorkerRegistry("r")
    calls: list[str] = []

    def handler(e: WorkerRegistryEntry) -> None:
        calls.append(e.name)

    reg.watch("a", handler)
    reg.watch("a", handler)
    reg.register(entry("a"))
    reg.unregister("a")
    reg.register(entry("a"))
    assert calls == ["a"]


async def test_failing_watcher_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    reg = WorkerRegistry("r")
    calls: list[str] = []

    def bad(e: WorkerRegistryEntry) -> None:
        raise RuntimeError("boom")

    async def bad_async(e: WorkerRegistryEntry) -> None:
        raise RuntimeError("async boom")

    reg.watch("a", bad)
    reg.watch("a", bad_async)
    reg.watch("a", lambda e: calls.append("good"))
    with caplog.at_level(logging.ERROR):
        assert reg.register(entry("a")) is True
        await reg.aclose()
    assert calls == ["good"]
    assert "boom" in caplog.text and "async boom" in caplog.text
    assert "a" in reg


async def test_watcher_rewatching_during_notification_fires_once() -> None:
    reg = WorkerRegistry("r")
    calls: list[int] = []

    def handler(e: WorkerRegistryEntry) -> None:
        calls.append(1)
        if len(calls) == 1:
            reg.unregister("a")
            reg.watch("a", handler)

    reg.watch("a", handler)
    reg.register(entry("a"))
    assert calls == [1]


async def test_local_remote_and_wait_for() -> None:
    reg = WorkerRegistry("r")
    reg.register(entry("mine"))
    reg.register(entry("theirs", runner="other"))
    assert reg.local_workers == ["mine"]
    assert reg.remote_workers == ["theirs"]
    waiter = asyncio.create_task(reg.wait_for("late"))
    await asyncio.sleep(0)
    reg.register(entry("late", runner="other"))
    assert (await waiter).runner == "other"
    with pytest.raises(TimeoutError):
        await reg.wait_for("never", timeout=0.01)
    assert reg.forget_runner("other") == ["theirs", "late"]
    assert reg.remote_workers == []
