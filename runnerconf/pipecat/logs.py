"""pipecat's log lines (it logs with loguru) through :mod:`logging`, as runnerconf's own.

``runnerconf up`` calls :func:`route_pipecat_logs` for a topology with pipecat pipelines, before
pipecat is imported: its lines then follow ``--log-level`` and ``--log-format`` (a JSON line per
record, never loguru's own format on stderr), and secrets and control characters are handled as
for every other line.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["route_pipecat_logs"]

_routed = False


def route_pipecat_logs() -> bool:
    """Replace loguru's handlers with one that hands every record to :mod:`logging`, under the
    logger of the module that logged it (``pipecat.pipeline.worker``...). Records below the level
    of the ``pipecat`` logger are dropped inside loguru, unformatted. Returns False when loguru
    (a dependency of pipecat-ai) is not installed. Idempotent."""
    global _routed
    try:
        from loguru import logger
    except ImportError:
        return False
    if _routed:
        return True
    floor = logging.getLogger("pipecat").getEffectiveLevel()

    def sink(message: Any) -> None:
        record = message.record
        exception = record["exception"]
        logging.getLogger(record["name"] or "pipecat").log(
            record["level"].no,
            "%s",
            record["message"],
            exc_info=(exception.type, exception.value, exception.traceback) if exception else None,
        )

    logger.remove()
    logger.add(sink, level=floor, format="{message}", backtrace=False, diagnose=False)
    _routed = True
    return True
