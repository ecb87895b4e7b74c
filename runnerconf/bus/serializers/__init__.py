"""Serializers of network buses (as ``pipecat.bus.serializers``)."""

from runnerconf.bus.serializers.base import MessageSerializer
from runnerconf.bus.serializers.json import JSONMessageSerializer

__all__ = ["JSONMessageSerializer", "MessageSerializer"]
