"""Pub/sub buses that workers and runners talk over.

``AsyncQueueBus`` is the in-process default; ``runnerconf.bus.redis.RedisBus`` (the ``redis``
extra) spreads a topology over several processes or machines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runnerconf.bus.async_queue import AsyncQueueBus
from runnerconf.bus.base import BusError, BusSubscriber, BusUnavailableError, WorkerBus
from runnerconf.bus.messages import (
    BusAddWorkerMessage,
    BusCancelMessage,
    BusCancelWorkerMessage,
    BusDataMessage,
    BusEndMessage,
    BusEndWorkerMessage,
    BusLocalMessage,
    BusMessage,
    BusSystemMessage,
    BusWorkerReadyMessage,
    BusWorkerRegistryMessage,
    WorkerRegistryEntry,
)

if TYPE_CHECKING:
    from runnerconf.bus.redis import RedisBus

__all__ = [
    "AsyncQueueBus",
    "BusAddWorkerMessage",
    "BusCancelMessage",
    "BusCancelWorkerMessage",
    "BusDataMessage",
    "BusEndMessage",
    "BusEndWorkerMessage",
    "BusError",
    "BusLocalMessage",
    "BusMessage",
    "BusSubscriber",
    "BusSystemMessage",
    "BusUnavailableError",
    "BusWorkerReadyMessage",
    "BusWorkerRegistryMessage",
    "RedisBus",
    "WorkerBus",
    "WorkerRegistryEntry",
]


def __getattr__(name: str) -> Any:
    # RedisBus needs the optional ``redis`` package: import it only when asked for.
    if name == "RedisBus":
        from runnerconf.bus.redis import RedisBus

        return RedisBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
