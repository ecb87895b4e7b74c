"""Buses that reach other processes: ``RedisBus`` (the ``redis`` extra, imported when asked for)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runnerconf.bus.network.redis import RedisBus

__all__ = ["RedisBus"]


def __getattr__(name: str) -> Any:
    if name == "RedisBus":
        from runnerconf.bus.network.redis import RedisBus

        return RedisBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
