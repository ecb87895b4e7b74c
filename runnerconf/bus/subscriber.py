"""``BusSubscriber``: what a bus delivers to (as ``pipecat.bus.subscriber``)."""

from __future__ import annotations

from runnerconf.bus.messages import BusMessage

__all__ = ["BusSubscriber"]


class BusSubscriber:
    """Mixin for objects that receive messages from a :class:`~runnerconf.bus.WorkerBus`.

    A bus takes any object with a unique ``name`` and an async ``on_bus_message``; this class
    documents the shape and gives the default :meth:`accepts_bus_message`.
    """

    @property
    def name(self) -> str:
        """Unique name of the subscriber on the bus."""
        raise NotImplementedError

    def accepts_bus_message(self, message: BusMessage) -> bool:
        """Whether to hand ``message`` to this subscriber (checked by the bus before each delivery)."""
        return True

    async def on_bus_message(self, message: BusMessage) -> None:
        """Handle one message (only those :meth:`accepts_bus_message` let through)."""
