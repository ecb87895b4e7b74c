"""Jobs between workers: the parameters, outcomes and contexts (as ``pipecat.pipeline.job_context``).

A worker asks others to do work with :meth:`BaseWorker.request_job` /
:meth:`~BaseWorker.request_job_group` (fire and forget, results through the ``on_job_*`` hooks) or
with the ``async with self.job(...)`` / ``self.job_group(...)`` contexts, which send the requests
on entry, stream updates to an ``async for`` inside the block, and wait for the responses on exit.
"""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from runnerconf.workers.base_worker import BaseWorker

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


class JobParams(BaseModel):
    """How to run a job on one worker.

    Attributes:
        name: Routes the request to the worker's ``@job(name=...)`` handler.
        payload: What the job is about.
        timeout: Seconds to wait for the worker to be ready, then again for the job.
        label: A human-readable description of the work.
        cancellable: Whether a cancellation asked from outside (a UI, an operator) is honoured;
            one the requester decides itself (shutdown, timeout, ``cancel_on_error``) always is.
    """

    name: str | None = None
    payload: dict[str, Any] | None = None
    timeout: float | None = None
    label: str | None = None
    cancellable: bool = True


class JobGroupParams(JobParams):
    """How to run a job on several workers at once.

    Attributes:
        cancel_on_error: A worker answering ERROR or FAILED cancels the rest of the group.
    """

    cancel_on_error: bool = True


P = TypeVar("P", bound=JobParams)


def resolve_job_params(params: P | None, params_class: type[P], **deprecated: Any) -> P:
    """``params``, or one built from the deprecated separate arguments (``name=``, ``payload=``...).

    Raises:
        TypeError: both were given.
    """
    given = {k: v for k, v in deprecated.items() if v is not None}
    if not given:
        return params if params is not None else params_class()
    if params is not None:
        raise TypeError(f"Pass either `params` or `{'`, `'.join(sorted(given))}`, not both.")
    warnings.warn(
        f"`{', '.join(f'{k}=...' for k in sorted(given))}` is deprecated since 1.8.0 and will be removed in "
        f"2.0.0. Use `params={params_class.__name__}(...)` instead.",
        DeprecationWarning,
        stacklevel=3,
    )
    return params_class(**given)


class JobStatus(StrEnum):
    """How a job ended: completed, cancelled, failed (a business error) or error (a crash)."""

    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    ERROR = "error"


class JobError(Exception):
    """A single-worker job failed or timed out."""


class JobGroupError(Exception):
    """A job group was cancelled (a worker error with ``cancel_on_error``, a timeout, a stop)."""


@dataclass
class JobGroupResponse:
    """The responses of a completed group, by worker name."""

    job_id: str
    responses: dict[str, dict[str, Any]]


@dataclass
class JobEvent:
    """An update or stream event of a single-worker job (``async for`` inside ``job()``)."""

    UPDATE: ClassVar[str] = "update"
    STREAM_START: ClassVar[str] = "stream_start"
    STREAM_DATA: ClassVar[str] = "stream_data"
    STREAM_END: ClassVar[str] = "stream_end"

    type: str
    data: dict[str, Any] | None = None


@dataclass
class JobGroupEvent:
    """An update or stream event of one worker of a group (``async for`` inside ``job_group()``)."""

    UPDATE: ClassVar[str] = "update"
    STREAM_START: ClassVar[str] = "stream_start"
    STREAM_DATA: ClassVar[str] = "stream_data"
    STREAM_END: ClassVar[str] = "stream_end"

    type: str
    worker_name: str
    data: dict[str, Any] | None = None


@dataclass
class JobGroup:
    """The workers a requester sent one job to, and what they answered so far."""

    job_id: str
    worker_names: list[str]
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeout_task: asyncio.Task[None] | None = None
    cancel_on_error: bool = True
    label: str | None = None
    cancellable: bool = True
    #: Workers that responded or ended their stream.
    terminated: set[str] = field(default_factory=set)
    #: Where a job()/job_group() context reads its events from.
    event_queue: asyncio.Queue[Any] | None = field(default=None, repr=False)
    _done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _error: str | None = field(default=None, repr=False)

    @property
    def is_done(self) -> bool:
        """Whether the group completed or failed."""
        return self._done.is_set()

    @property
    def error(self) -> str | None:
        """Why the group failed, if it did."""
        return self._error

    async def wait(self) -> None:
        """Wait until every worker responded (JobGroupError if the group was cancelled)."""
        await self._done.wait()
        if self._error is not None:
            raise JobGroupError(self._error)

    def complete(self) -> None:
        """Every worker responded."""
        self._finish()

    def fail(self, reason: str | None = None) -> None:
        """The group was cancelled."""
        self._error = reason or "cancelled"
        self._finish()

    def _finish(self) -> None:
        self._done.set()
        if self.event_queue is not None:
            self.event_queue.put_nowait(None)  # ends an ``async for`` over the context


class _Context:
    """What the single-worker and the group contexts share."""

    def __init__(self, worker: BaseWorker, names: list[str], params: JobGroupParams) -> None:
        self._worker = worker
        self._names = names
        self._params = params
        self._group: JobGroup | None = None

    def _started(self) -> JobGroup:
        if self._group is None:
            raise RuntimeError("the job has not been started (use it in `async with`)")
        return self._group

    @property
    def job_id(self) -> str:
        """The job's id (shared by every worker of a group)."""
        return self._started().job_id

    async def _enter(self) -> None:
        self._group = await self._worker.create_job_group_and_request_job(self._names, params=self._params)
        self._group.event_queue = asyncio.Queue()

    async def _next(self) -> Any:
        group = self._group
        if group is None or group.event_queue is None:
            raise StopAsyncIteration
        event = await group.event_queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def _exit(self, failed: bool) -> None:
        group = self._group
        if failed:
            if group is not None and group.job_id in self._worker.job_groups:
                # Shielded: the block may be failing because its task is being cancelled.
                await asyncio.shield(self._worker.cancel_job_group(group.job_id, reason="context exited with error"))
            return
        assert group is not None
        await group.wait()


class JobGroupContext(_Context):
    """``async with worker.job_group("a", "b", params=...) as group:`` (see the module docs).

    ``responses`` holds the answers by worker name once the block is done; a cancelled group
    raises :class:`JobGroupError` on exit; an exception in the block cancels the group.
    """

    def __init__(self, worker: BaseWorker, worker_names: tuple[str, ...], *, params: JobGroupParams | None = None) -> None:
        super().__init__(worker, list(worker_names), params or JobGroupParams())

    @property
    def responses(self) -> dict[str, dict[str, Any]]:
        """The answers so far, by worker name."""
        return self._started().responses

    def __aiter__(self) -> JobGroupContext:
        return self

    async def __anext__(self) -> JobGroupEvent:
        return await self._next()  # type: ignore[no-any-return]

    async def __aenter__(self) -> JobGroupContext:
        await self._enter()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        await self._exit(exc_type is not None)
        return False


class JobContext(_Context):
    """``async with worker.job("helper", params=...) as job:``; ``job.response`` after the block.

    A failed or timed-out job raises :class:`JobError` on exit.
    """

    def __init__(self, worker: BaseWorker, worker_name: str, *, params: JobParams | None = None) -> None:
        super().__init__(worker, [worker_name], JobGroupParams(**(params or JobParams()).model_dump()))
        self._worker_name = worker_name

    @property
    def response(self) -> dict[str, Any]:
        """The worker's answer ({} until it answered)."""
        return self._started().responses.get(self._worker_name, {})

    def __aiter__(self) -> JobContext:
        return self

    async def __anext__(self) -> JobEvent:
        event = await self._next()
        return JobEvent(type=event.type, data=event.data)

    async def __aenter__(self) -> JobContext:
        await self._enter()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        try:
            await self._exit(exc_type is not None)
        except JobGroupError as error:
            raise JobError(str(error)) from error
        return False
