"""Jobs, the worker side: requesting, answering, streaming and cancelling (pipecat's semantics).

:class:`JobsMixin` is part of :class:`~runnerconf.workers.base_worker.BaseWorker`. A requester
waits until the workers it asks are ready, sends each a :class:`BusJobRequestMessage` carrying one
shared ``job_id`` and tracks the group; a worker runs each request in a task of its own (a
``@job`` handler or :meth:`~JobsMixin.on_job_request`) and answers with
:meth:`~JobsMixin.send_job_response`, :meth:`~JobsMixin.send_job_update` or a stream. A worker that
stops answers its jobs still running with CANCELLED and cancels the groups it requested.

Differences from pipecat: a handler that raises answers its job with ERROR (pipecat leaves the
requester waiting for its timeout), and waiting for workers to be ready leaves no watcher behind.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

from runnerconf.bus.messages import (
    BusJobCancelMessage,
    BusJobRequestMessage,
    BusJobResponseMessage,
    BusJobResponseUrgentMessage,
    BusJobStreamDataMessage,
    BusJobStreamEndMessage,
    BusJobStreamStartMessage,
    BusJobUpdateMessage,
    BusJobUpdateRequestMessage,
    BusJobUpdateUrgentMessage,
    BusMessage,
)
from runnerconf.workers.decorators import job_handlers_of
from runnerconf.workers.job_context import (
    JobContext,
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

if TYPE_CHECKING:
    from runnerconf.workers.base_worker import BaseWorker

__all__ = ["JOB_MESSAGES", "JobsMixin"]

logger = logging.getLogger(__name__)

#: Message classes the job machinery handles.
JOB_MESSAGES = (
    BusJobRequestMessage,
    BusJobResponseMessage,
    BusJobResponseUrgentMessage,
    BusJobUpdateMessage,
    BusJobUpdateUrgentMessage,
    BusJobUpdateRequestMessage,
    BusJobCancelMessage,
    BusJobStreamStartMessage,
    BusJobStreamDataMessage,
    BusJobStreamEndMessage,
)


class _JobState:
    """A worker's jobs: those it works on and the groups it requested (made on first use)."""

    __slots__ = ("active", "tasks", "groups", "locks")

    def __init__(self) -> None:
        self.active: dict[str, BusJobRequestMessage] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.groups: dict[str, JobGroup] = {}
        self.locks: dict[str, asyncio.Lock] = {}


class JobsMixin:
    """The job half of a worker (see the module docs)."""

    # -- state -----------------------------------------------------------------------------------

    def _jobs(self: BaseWorker) -> _JobState:  # type: ignore[misc]
        state = self._rc.jobs
        if state is None:
            state = self._rc.jobs = _JobState()
        return state

    @property
    def active_jobs(self: BaseWorker) -> dict[str, BusJobRequestMessage]:  # type: ignore[misc]
        """The job requests this worker is working on, by job id."""
        return self._jobs().active

    @property
    def job_groups(self: BaseWorker) -> dict[str, JobGroup]:  # type: ignore[misc]
        """The job groups this worker requested that are still running, by job id."""
        return self._jobs().groups

    # -- requesting ------------------------------------------------------------------------------

    async def request_job(
        self: BaseWorker,  # type: ignore[misc]
        worker_name: str,
        *,
        params: JobParams | None = None,
        name: str | None = None,
        payload: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Send a job to ``worker_name`` once it is ready; returns the job id (results: ``on_job_*``)."""
        resolved = resolve_job_params(params, JobParams, name=name, payload=payload, timeout=timeout)
        group = await self.create_job_group_and_request_job([worker_name], params=JobGroupParams(**resolved.model_dump()))
        return group.job_id

    def job(
        self: BaseWorker,  # type: ignore[misc]
        worker_name: str,
        *,
        params: JobParams | None = None,
        name: str | None = None,
        payload: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> JobContext:
        """``async with self.job("helper", params=JobParams(...)) as job:`` (see JobContext)."""
        return JobContext(self, worker_name, params=resolve_job_params(params, JobParams, name=name, payload=payload, timeout=timeout))

    async def request_job_group(
        self: BaseWorker,  # type: ignore[misc]
        *worker_names: str,
        params: JobGroupParams | None = None,
        name: str | None = None,
        payload: dict[str, Any] | None = None,
        timeout: float | None = None,
        cancel_on_error: bool | None = None,
    ) -> str:
        """Send one job to several workers once they are ready; returns the shared job id."""
        _check_names(self, worker_names)
        resolved = resolve_job_params(
            params, JobGroupParams, name=name, payload=payload, timeout=timeout, cancel_on_error=cancel_on_error
        )
        group = await self.create_job_group_and_request_job(list(worker_names), params=resolved)
        return group.job_id

    def job_group(
        self: BaseWorker,  # type: ignore[misc]
        *worker_names: str,
        params: JobGroupParams | None = None,
        name: str | None = None,
        payload: dict[str, Any] | None = None,
        timeout: float | None = None,
        cancel_on_error: bool | None = None,
    ) -> JobGroupContext:
        """``async with self.job_group("a", "b", params=...) as group:`` (see JobGroupContext)."""
        _check_names(self, worker_names)
        resolved = resolve_job_params(
            params, JobGroupParams, name=name, payload=payload, timeout=timeout, cancel_on_error=cancel_on_error
        )
        return JobGroupContext(self, worker_names, params=resolved)

    async def create_job_group_and_request_job(
        self: BaseWorker,  # type: ignore[misc]
        worker_names: list[str],
        *,
        params: JobGroupParams | None = None,
        name: str | None = None,
        payload: dict[str, Any] | None = None,
        timeout: float | None = None,
        cancel_on_error: bool | None = None,
    ) -> JobGroup:
        """Wait for the workers to be ready (within the timeout), then create the group and send.

        Raises:
            JobGroupError: the workers were not ready within the timeout.
        """
        resolved = resolve_job_params(
            params, JobGroupParams, name=name, payload=payload, timeout=timeout, cancel_on_error=cancel_on_error
        )
        registry = self.registry
        try:
            await asyncio.wait_for(
                asyncio.gather(*(registry.wait_for(n) for n in dict.fromkeys(worker_names))), resolved.timeout
            )
        except TimeoutError:
            raise JobGroupError("workers not ready within timeout") from None
        job_id = str(uuid.uuid4())
        group = JobGroup(
            job_id=job_id,
            worker_names=list(worker_names),
            cancel_on_error=resolved.cancel_on_error,
            label=resolved.label,
            cancellable=resolved.cancellable,
        )
        self._jobs().groups[job_id] = group
        if resolved.timeout is not None:
            group.timeout_task = self.create_task(self._job_timeout(job_id, resolved.timeout), f"job_timeout_{job_id[:8]}")
        for worker_name in worker_names:
            await self.send_bus_message(
                BusJobRequestMessage(
                    source=self.name, target=worker_name, job_id=job_id, job_name=resolved.name, payload=resolved.payload
                )
            )
        return group

    async def cancel_job_group(self: BaseWorker, job_id: str, *, reason: str | None = None) -> None:  # type: ignore[misc]
        """Cancel a group this worker requested: its workers get a BusJobCancelMessage."""
        group = self._jobs().groups.pop(job_id, None)
        if group is None:
            return
        timer = group.timeout_task
        # On the timeout path this runs in the timer task itself: cancelling it would cut this short.
        if timer is not None and timer is not asyncio.current_task():
            await self.cancel_task(timer)
        for worker_name in group.worker_names:
            await self.send_bus_message(BusJobCancelMessage(source=self.name, target=worker_name, job_id=job_id, reason=reason))
        group.fail(reason)

    async def request_cancel_job_group(self: BaseWorker, job_id: str, *, reason: str | None = None) -> bool:  # type: ignore[misc]
        """Cancel a group on an outside request, if it is ``cancellable``; True if it was."""
        group = self._jobs().groups.get(job_id)
        if group is None or not group.cancellable:
            return False
        await self.cancel_job_group(job_id, reason=reason)
        return True

    async def request_job_update(self: BaseWorker, job_id: str, worker_name: str) -> None:  # type: ignore[misc]
        """Ask ``worker_name`` for a progress update on ``job_id``."""
        await self.send_bus_message(BusJobUpdateRequestMessage(source=self.name, target=worker_name, job_id=job_id))

    async def _job_timeout(self: BaseWorker, job_id: str, timeout: float) -> None:  # type: ignore[misc]
        try:
            await asyncio.sleep(timeout)
        except asyncio.CancelledError:
            return
        await self.cancel_job_group(job_id, reason="timeout")

    # -- answering ---------------------------------------------------------------------------------

    def _active_request(self: BaseWorker, job_id: str, what: str) -> BusJobRequestMessage:  # type: ignore[misc]
        request = self._jobs().active.get(job_id)
        if request is None:
            raise RuntimeError(f"Worker '{self}': no active job '{job_id}' to {what}")
        return request

    async def send_job_response(
        self: BaseWorker,  # type: ignore[misc]
        job_id: str,
        response: dict[str, Any] | None = None,
        *,
        status: JobStatus = JobStatus.COMPLETED,
        urgent: bool = False,
    ) -> None:
        """Answer a job (it is then no longer active); ``urgent`` sends it with system priority."""
        request = self._active_request(job_id, "respond to")
        kind = BusJobResponseUrgentMessage if urgent else BusJobResponseMessage
        await self.send_bus_message(kind(source=self.name, target=request.source, job_id=job_id, status=status, response=response))
        self._jobs().active.pop(job_id, None)

    async def send_job_update(
        self: BaseWorker, job_id: str, update: dict[str, Any] | None = None, *, urgent: bool = False  # type: ignore[misc]
    ) -> None:
        """Report progress on an active job to its requester."""
        request = self._active_request(job_id, "update")
        kind = BusJobUpdateUrgentMessage if urgent else BusJobUpdateMessage
        await self.send_bus_message(kind(source=self.name, target=request.source, job_id=job_id, update=update))

    async def send_job_stream_start(self: BaseWorker, job_id: str, data: dict[str, Any] | None = None) -> None:  # type: ignore[misc]
        """Start streaming a job's result."""
        request = self._active_request(job_id, "stream")
        await self.send_bus_message(BusJobStreamStartMessage(source=self.name, target=request.source, job_id=job_id, data=data))

    async def send_job_stream_data(self: BaseWorker, job_id: str, data: dict[str, Any] | None = None) -> None:  # type: ignore[misc]
        """Send one chunk of a streamed result."""
        request = self._active_request(job_id, "stream")
        await self.send_bus_message(BusJobStreamDataMessage(source=self.name, target=request.source, job_id=job_id, data=data))

    async def send_job_stream_end(self: BaseWorker, job_id: str, data: dict[str, Any] | None = None) -> None:  # type: ignore[misc]
        """End a streamed result; the job is complete."""
        request = self._active_request(job_id, "stream")
        await self.send_bus_message(BusJobStreamEndMessage(source=self.name, target=request.source, job_id=job_id, data=data))
        self._jobs().active.pop(job_id, None)

    # -- hooks (override; pipecat asks to call super(), which does nothing here) -------------------

    async def on_job_request(self, message: BusJobRequestMessage) -> None:
        """A job request no ``@job`` handler takes: do the work, then ``send_job_response``."""

    async def on_job_response(self, message: BusJobResponseMessage | BusJobResponseUrgentMessage) -> None:
        """A worker answered a job this worker requested."""

    async def on_job_update(self, message: BusJobUpdateMessage | BusJobUpdateUrgentMessage) -> None:
        """A worker reported progress."""

    async def on_job_update_requested(self, message: BusJobUpdateRequestMessage) -> None:
        """The requester asks for progress: answer with ``send_job_update``."""

    async def on_job_completed(self, result: JobGroupResponse) -> None:
        """Every worker of a group answered."""

    async def on_job_error(self, message: BusJobResponseMessage | BusJobResponseUrgentMessage) -> None:
        """A worker answered ERROR or FAILED and the group (``cancel_on_error``) was cancelled."""

    async def on_job_stream_start(self, message: BusJobStreamStartMessage) -> None:
        """A worker started streaming."""

    async def on_job_stream_data(self, message: BusJobStreamDataMessage) -> None:
        """A streamed chunk."""

    async def on_job_stream_end(self, message: BusJobStreamEndMessage) -> None:
        """A worker ended its stream."""

    async def on_job_cancelled(self, message: BusJobCancelMessage) -> None:
        """The requester cancelled a job this worker works on (its handler was cancelled)."""

    # -- dispatch ----------------------------------------------------------------------------------

    async def _dispatch_job_message(self: BaseWorker, message: BusMessage) -> None:  # type: ignore[misc]
        if isinstance(message, BusJobRequestMessage):
            await self._handle_job_request(message)
        elif isinstance(message, (BusJobResponseMessage, BusJobResponseUrgentMessage)):
            await self._handle_job_response(message)
        elif isinstance(message, (BusJobUpdateMessage, BusJobUpdateUrgentMessage)):
            await self.on_job_update(message)
            await self._call_event_handler("on_job_update", message)
            self._push_job_event(message.job_id, JobGroupEvent(JobGroupEvent.UPDATE, message.source, message.update))
        elif isinstance(message, BusJobUpdateRequestMessage):
            if message.job_id in self._jobs().active:
                await self.on_job_update_requested(message)
                await self._call_event_handler("on_job_update_requested", message)
        elif isinstance(message, BusJobCancelMessage):
            await self._handle_job_cancel(message)
        elif isinstance(message, BusJobStreamStartMessage):
            await self.on_job_stream_start(message)
            await self._call_event_handler("on_job_stream_start", message)
            self._push_job_event(message.job_id, JobGroupEvent(JobGroupEvent.STREAM_START, message.source, message.data))
        elif isinstance(message, BusJobStreamDataMessage):
            await self.on_job_stream_data(message)
            await self._call_event_handler("on_job_stream_data", message)
            self._push_job_event(message.job_id, JobGroupEvent(JobGroupEvent.STREAM_DATA, message.source, message.data))
        elif isinstance(message, BusJobStreamEndMessage):
            self._terminated(message.job_id, message.source)
            await self.on_job_stream_end(message)
            await self._call_event_handler("on_job_stream_end", message)
            self._push_job_event(message.job_id, JobGroupEvent(JobGroupEvent.STREAM_END, message.source, message.data))
            await self._track_job_response(message.job_id, message.source, message.data)

    async def _handle_job_request(self: BaseWorker, message: BusJobRequestMessage) -> None:  # type: ignore[misc]
        jobs = self._jobs()
        jobs.active[message.job_id] = message
        method = job_handlers_of(type(self)).get(message.job_name) if message.job_name else None
        handler = getattr(self, method) if method is not None else self.on_job_request
        lock = None
        if method is not None and getattr(handler, "job_sequential", False):
            lock = jobs.locks.get(message.job_name)  # type: ignore[arg-type]
            if lock is None:
                lock = jobs.locks[message.job_name] = asyncio.Lock()  # type: ignore[index]
        jobs.tasks[message.job_id] = self.create_task(
            self._run_job_handler(message, handler, lock), f"job_{message.job_name or 'default'}"
        )
        await self._call_event_handler("on_job_request", message)

    async def _run_job_handler(self: BaseWorker, message: BusJobRequestMessage, handler: Any, lock: asyncio.Lock | None) -> None:  # type: ignore[misc]
        jobs = self._jobs()
        try:
            if lock is not None:
                async with lock:
                    await handler(message)
            else:
                await handler(message)
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            logger.exception("worker %s: job %s (%s) failed", self.name, message.job_id, message.job_name or "default")
            if message.job_id in jobs.active:
                # Answer it: the requester would otherwise wait for its timeout (or for ever).
                await self.send_job_response(message.job_id, {"error": f"{type(exc).__name__}: {exc}"}, status=JobStatus.ERROR)
        finally:
            jobs.tasks.pop(message.job_id, None)

    async def _handle_job_response(self: BaseWorker, message: BusJobResponseMessage | BusJobResponseUrgentMessage) -> None:  # type: ignore[misc]
        self._terminated(message.job_id, message.source)
        await self.on_job_response(message)
        await self._call_event_handler("on_job_response", message)
        if message.status in (JobStatus.ERROR, JobStatus.FAILED):
            group = self._jobs().groups.get(message.job_id)
            if group is not None and group.cancel_on_error:
                group.responses[message.source] = message.response or {}
                await self.on_job_error(message)
                await self._call_event_handler("on_job_error", message)
                await self.cancel_job_group(message.job_id, reason=f"worker '{message.source}' errored")
                return
        await self._track_job_response(message.job_id, message.source, message.response)

    async def _handle_job_cancel(self: BaseWorker, message: BusJobCancelMessage) -> None:  # type: ignore[misc]
        jobs = self._jobs()
        if message.job_id not in jobs.active:
            return
        task = jobs.tasks.get(message.job_id)
        if task is not None:
            await self.cancel_task(task)
        await self.on_job_cancelled(message)
        await self._call_event_handler("on_job_cancelled", message)
        if message.job_id in jobs.active:
            await self.send_job_response(message.job_id, status=JobStatus.CANCELLED)

    def _terminated(self: BaseWorker, job_id: str, worker_name: str) -> None:  # type: ignore[misc]
        group = self._jobs().groups.get(job_id)
        if group is not None:
            group.terminated.add(worker_name)

    def _push_job_event(self: BaseWorker, job_id: str, event: JobGroupEvent) -> None:  # type: ignore[misc]
        group = self._jobs().groups.get(job_id)
        if group is not None and group.event_queue is not None:
            group.event_queue.put_nowait(event)

    async def _track_job_response(self: BaseWorker, job_id: str, source: str, response: dict[str, Any] | None) -> None:  # type: ignore[misc]
        jobs = self._jobs()
        group = jobs.groups.get(job_id)
        if group is None:
            return
        group.responses[source] = response or {}
        if group.responses.keys() >= set(group.worker_names):
            if group.timeout_task is not None:
                await self.cancel_task(group.timeout_task)
            jobs.groups.pop(job_id, None)
            result = JobGroupResponse(job_id=job_id, responses=group.responses)
            await self.on_job_completed(result)
            await self._call_event_handler("on_job_completed", result)
            group.complete()

    async def _stop_jobs(self: BaseWorker) -> None:  # type: ignore[misc]
        """Cancel the groups this worker requested, answer its active jobs CANCELLED, end handlers."""
        jobs = self._rc.jobs
        if jobs is None:
            return
        for job_id in list(jobs.groups):
            await self.cancel_job_group(job_id, reason=f"worker '{self}' stopped")
        for job_id in list(jobs.active):
            await self.send_job_response(job_id, status=JobStatus.CANCELLED)
        for task in list(jobs.tasks.values()):
            await self.cancel_task(task)


def _check_names(worker: Any, names: tuple[Any, ...]) -> None:
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{worker} Expected worker name as str, got {type(name).__name__}")
