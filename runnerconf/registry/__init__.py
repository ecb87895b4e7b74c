"""The worker registry: which workers are ready, and on which runner."""

from runnerconf.registry.registry import WatchHandler, WorkerRegistry
from runnerconf.registry.types import WorkerErrorData, WorkerReadyData, WorkerRegistryEntry

__all__ = ["WatchHandler", "WorkerErrorData", "WorkerReadyData", "WorkerRegistry", "WorkerRegistryEntry"]
