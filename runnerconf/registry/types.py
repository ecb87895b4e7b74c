"""Records the registry and the registry messages carry (as ``pipecat.registry.types``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WorkerErrorData", "WorkerReadyData", "WorkerRegistryEntry"]


@dataclass(slots=True)
class WorkerRegistryEntry:
    """A worker as a runner lists it to its peers.

    Attributes:
        name: The worker's name.
        parent: Its parent's name, or None for a root worker.
        active: Whether it is active.
        bridged: Whether it is bridged onto the bus (pipecat pipelines).
        started_at: Unix time it became ready.
    """

    name: str
    parent: str | None = None
    active: bool = False
    bridged: bool = False
    started_at: float | None = None


@dataclass(slots=True)
class WorkerReadyData:
    """A worker that is ready, and the runner it runs on (what registry watchers are given)."""

    worker_name: str
    runner: str


@dataclass(slots=True)
class WorkerErrorData:
    """An error a child worker reported to its parent."""

    worker_name: str
    error: str
