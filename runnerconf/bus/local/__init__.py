"""In-process buses."""

from runnerconf.bus.local.async_queue import AsyncQueueBus

__all__ = ["AsyncQueueBus"]
