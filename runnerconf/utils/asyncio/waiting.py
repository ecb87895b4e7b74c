"""Waiting for replies that arrive one by one (``down``, ``ps``, ``apply``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["wait_until"]


async def wait_until(changed: asyncio.Event, done: Callable[[], bool], timeout: float, *, quiet: float | None = None) -> None:
    """Return once ``done()`` holds (checked each time ``changed`` is set), after ``timeout``
    seconds, or, with ``quiet``, once nothing has changed for that long."""
    deadline = time.monotonic() + timeout
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), min(left, quiet) if quiet else left)
        except TimeoutError:
            if quiet:
                return
