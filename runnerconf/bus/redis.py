"""``runnerconf.bus.redis.RedisBus``: the path issue 6 gave; the bus lives in :mod:`runnerconf.bus.network.redis`."""

from runnerconf.bus.network.redis import INSTALL_HINT, RedisBus, redact

__all__ = ["INSTALL_HINT", "RedisBus", "redact"]
