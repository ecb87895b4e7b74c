"""pipecat pipelines as runnerconf workers (the ``pipecat`` extra: ``pip install 'runnerconf[pipecat]'``).

* :class:`~runnerconf.pipecat.worker.PipecatPipelineWorker` runs a pipecat ``Pipeline`` of
  ``FrameProcessor``\\ s under pipecat's own ``PipelineWorker``, as one worker of a runnerconf runner
  (``type: pipecat_pipeline`` in a topology).
* :mod:`runnerconf.pipecat.frames` turns frames into bus payloads and back (text frames as text;
  :func:`~runnerconf.pipecat.frames.register_converter` for other frame types).

Importing this package does not import pipecat; its modules do, and say how to install it when
it is missing (:data:`INSTALL_HINT`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runnerconf.utils.lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from runnerconf.pipecat.frames import FrameConverter, TextConverter, register_converter
    from runnerconf.pipecat.worker import PipecatPipelineWorker

__all__ = ["INSTALL_HINT", "FrameConverter", "PipecatPipelineWorker", "TextConverter", "pipecat_available", "register_converter"]

INSTALL_HINT = "pipecat pipelines need the pipecat extra: pip install 'runnerconf[pipecat]'"


def pipecat_available() -> bool:
    """Whether pipecat-ai can be imported (without importing it)."""
    from importlib.util import find_spec

    try:
        return find_spec("pipecat") is not None
    except (ImportError, ValueError):  # a broken or blocked package
        return False


def require_pipecat() -> None:
    """Import pipecat's pipeline worker, or raise ImportError with :data:`INSTALL_HINT`."""
    try:
        import pipecat.pipeline.worker  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc


__getattr__ = _lazy_exports(
    __name__,
    globals(),
    {
        "FrameConverter": "runnerconf.pipecat.frames",
        "TextConverter": "runnerconf.pipecat.frames",
        "register_converter": "runnerconf.pipecat.frames",
        "PipecatPipelineWorker": "runnerconf.pipecat.worker",
    },
)
