"""Serializers of network buses (as ``pipecat.bus.serializers``)."""

from runnerconf.bus.serializers.base import MessageSerializer
from runnerconf.bus.serializers.json import JSONMessageSerializer
from runnerconf.bus.serializers.pipecat import PipecatMessageSerializer

__all__ = ["JSONMessageSerializer", "MessageSerializer", "PipecatMessageSerializer"]
