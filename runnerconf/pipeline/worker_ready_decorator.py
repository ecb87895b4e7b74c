"""Pipecat's path for ``@worker_ready``; it lives in :mod:`runnerconf.workers.decorators`."""

from runnerconf.workers.decorators import worker_ready

__all__ = ["worker_ready"]
