"""Deprecated module: the runner lives in :mod:`runnerconf.workers.runner` as ``WorkerRunner``.

This module re-exports ``WorkerRunner`` so that ``from runnerconf.pipeline.runner import
WorkerRunner`` keeps working, and hosts the deprecated ``PipelineRunner`` alias.
"""

from __future__ import annotations

import warnings
from typing import Any

from runnerconf.workers.runner import WorkerRunner

__all__ = ["PipelineRunner", "WorkerRunner"]

#: Pipecat's wording, so that filters written for pipecat's warning match ours.
_MESSAGE = "`PipelineRunner` is deprecated since 1.3.0 and will be removed in 2.0.0. Use `WorkerRunner` instead."


class PipelineRunner(WorkerRunner):
    """Deprecated alias of :class:`~runnerconf.workers.runner.WorkerRunner` (since 1.3.0)."""

    __deprecated__ = _MESSAGE

    def __init_subclass__(cls, **kwargs: Any) -> None:
        warnings.warn(_MESSAGE, DeprecationWarning, stacklevel=2)
        super().__init_subclass__(**kwargs)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if type(self) is PipelineRunner:
            warnings.warn(_MESSAGE, DeprecationWarning, stacklevel=2)
        super().__init__(*args, **kwargs)
