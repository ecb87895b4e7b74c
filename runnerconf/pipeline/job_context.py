"""Pipecat's path for the job types; they live in :mod:`runnerconf.workers.job_context`."""

from runnerconf.workers.job_context import (
    JobContext,
    JobError,
    JobEvent,
    JobGroup,
    JobGroupContext,
    JobGroupError,
    JobGroupEvent,
    JobGroupParams,
    JobGroupResponse,
    JobParams,
    JobStatus,
    resolve_job_params,
)

__all__ = [
    "JobContext",
    "JobError",
    "JobEvent",
    "JobGroup",
    "JobGroupContext",
    "JobGroupError",
    "JobGroupEvent",
    "JobGroupParams",
    "JobGroupResponse",
    "JobParams",
    "JobStatus",
    "resolve_job_params",
]
