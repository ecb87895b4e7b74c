"""Pub/sub buses that workers and runners talk over (the names of ``pipecat.bus``).

``AsyncQueueBus`` is the in-process default; ``RedisBus`` (the ``redis`` extra, imported when
asked for) spreads a topology over several processes or machines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runnerconf.bus.bus import DEFAULT_MAX_QUEUED, BusError, BusUnavailableError, WorkerBus
from runnerconf.bus.local import AsyncQueueBus
from runnerconf.bus.messages import (
    BusActivateWorkerMessage,
    BusAddWorkerMessage,
    BusCancelMessage,
    BusCancelWorkerMessage,
    BusDataMessage,
    BusDeactivateWorkerMessage,
    BusEndMessage,
    BusEndWorkerMessage,
    BusFlushProgressMessage,
    BusFrameMessage,
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
    BusLocalMessage,
    BusMessage,
    BusSystemMessage,
    BusTTSSpeakMessage,
    BusWorkerErrorMessage,
    BusWorkerLocalErrorMessage,
    BusWorkerReadyMessage,
    BusWorkerRegistryMessage,
)
from runnerconf.bus.subscriber import BusSubscriber
from runnerconf.registry.types import WorkerRegistryEntry

if TYPE_CHECKING:
    from runnerconf.bus.network.redis import RedisBus

__all__ = [
    "DEFAULT_MAX_QUEUED",
    "AsyncQueueBus",
    "BusActivateWorkerMessage",
    "BusAddWorkerMessage",
    "BusCancelMessage",
    "BusCancelWorkerMessage",
    "BusDataMessage",
    "BusDeactivateWorkerMessage",
    "BusEndMessage",
    "BusEndWorkerMessage",
    "BusError",
    "BusFlushProgressMessage",
    "BusFrameMessage",
    "BusJobCancelMessage",
    "BusJobRequestMessage",
    "BusJobResponseMessage",
    "BusJobResponseUrgentMessage",
    "BusJobStreamDataMessage",
    "BusJobStreamEndMessage",
    "BusJobStreamStartMessage",
    "BusJobUpdateMessage",
    "BusJobUpdateRequestMessage",
    "BusJobUpdateUrgentMessage",
    "BusLocalMessage",
    "BusMessage",
    "BusSubscriber",
    "BusSystemMessage",
    "BusTTSSpeakMessage",
    "BusUnavailableError",
    "BusWorkerErrorMessage",
    "BusWorkerLocalErrorMessage",
    "BusWorkerReadyMessage",
    "BusWorkerRegistryMessage",
    "RedisBus",
    "WorkerBus",
    "WorkerRegistryEntry",
]


def __getattr__(name: str) -> Any:
    # RedisBus needs the optional ``redis`` package: import it only when asked for.
    if name == "RedisBus":
        from runnerconf.bus.network.redis import RedisBus

        return RedisBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
