"""Deprecated module: the runner lives in :mod:`runnerconf.workers.runner` as ``WorkerRunner``.

This module re-exports ``WorkerRunner`` so that ``from runnerconf.pipeline.runner import
WorkerRunner`` keeps working, and hosts the deprecated ``PipelineRunner`` alias.
"""

from __future__ import annotations

import warnings
from typing import Any

from runnerconf.workers.runner import WorkerRunner

__all__ = ["PipelineRunner", "WorkerRunner"]

_MESSAGE = (
    "PipelineRunner is deprecated; use WorkerRunner from runnerconf.workers.runner "
    "(the runner runs workers, of which PipelineWorker is one kind)"
)


class PipelineRunner(WorkerRunner):
    """Deprecated alias of :class:`~runnerconf.workers.runner.WorkerRunner`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        warnings.warn(_MESSAGE, DeprecationWarning, stacklevel=2)
        super().__init_subclass__(**kwargs)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if type(self) is PipelineRunner:
            warnings.warn(_MESSAGE, DeprecationWarning, stacklevel=2)
        super().__init__(*args, **kwargs)
