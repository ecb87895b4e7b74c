"""``up --watch``: reload when a topology, overlay or env file changes.

Files are polled (no platform watcher needed, and it works on network and bind mounts, and
for editors that replace a file instead of writing it): a change is a different size, mtime
or inode, or a file appearing or going. A change is applied once the files have been quiet
for ``settle`` seconds, so an editor's write-rename-chmod dance is one reload.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence

__all__ = ["watch_files"]

logger = logging.getLogger("runnerconf.control")

Stamp = tuple[int, int, int] | None


def _stamp(path: str) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


async def watch_files(
    paths: Sequence[str], on_change: Callable[[list[str]], Awaitable[object]], *, interval: float = 0.25, settle: float = 0.2
) -> None:
    """Call ``on_change(changed paths)`` after each settled change, until cancelled."""
    stamps = {p: _stamp(p) for p in paths}
    logger.info("watching %s for changes", ", ".join(paths))
    while True:
        await asyncio.sleep(interval)
        latest = {p: _stamp(p) for p in paths}
        if latest == stamps:
            continue
        while True:  # wait until the writes are over
            await asyncio.sleep(settle)
            now = {p: _stamp(p) for p in paths}
            if now == latest:
                break
            latest = now
        changed = [p for p in paths if latest[p] != stamps[p]]
        stamps = latest
        if not changed:
            continue  # written back as it was
        try:
            await on_change(changed)
        except asyncio.CancelledError:
            raise
        except Exception:  # a reload's bug must not end the watch
            logger.exception("reload after a change of %s failed", ", ".join(changed))
