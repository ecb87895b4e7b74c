"""Pipecat's path for ``@job``; it lives in :mod:`runnerconf.workers.decorators`."""

from runnerconf.workers.decorators import job

__all__ = ["job"]
