"""Task managers: who created which asyncio task, so what is left at the end can be reported.

Mirrors ``pipecat.utils.asyncio.task_manager``: workers create their helper tasks through a task
manager (``self.create_task(...)``), and whoever owns the manager reports the tasks still running
once everything should have stopped ("dangling tasks").
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Sequence
from contextvars import Context
from dataclasses import dataclass
from typing import Any

__all__ = ["BaseTaskManager", "TaskManager", "TaskManagerParams"]

logger = logging.getLogger(__name__)


@dataclass
class TaskManagerParams:
    """Deprecated: pass ``loop`` to :class:`TaskManager` instead (kept for pipecat-style code)."""

    loop: asyncio.AbstractEventLoop

    def __post_init__(self) -> None:
        warnings.warn(
            "`TaskManagerParams` is deprecated since 1.5.0 and will be removed in 2.0.0. Use `TaskManager` instead.",
            DeprecationWarning,
            stacklevel=3,
        )


class BaseTaskManager(ABC):
    """Creates, cancels and lists the tasks of one owner."""

    @abstractmethod
    def get_event_loop(self) -> asyncio.AbstractEventLoop:
        """The loop tasks are created on."""

    @abstractmethod
    def create_task(self, coroutine: Coroutine[Any, Any, Any], name: str, context: Context | None = None) -> asyncio.Task[Any]:
        """Schedule ``coroutine`` as a task named ``name`` and track it until it ends."""

    @abstractmethod
    async def cancel_task(self, task: asyncio.Task[Any], timeout: float | None = None) -> None:
        """Cancel ``task`` and wait (up to ``timeout`` seconds) for it to end."""

    @abstractmethod
    def current_tasks(self) -> Sequence[asyncio.Task[Any]]:
        """The tracked tasks that have not ended."""


class TaskManager(BaseTaskManager):
    """The task manager runners and workers use.

    An exception escaping a task created here is logged (with the task's name) and the task ends
    normally, as in pipecat: a helper task that fails must not go unnoticed, nor crash its owner.

    Args:
        context: Context the tasks run in (default: a copy of the current one).
        loop: The loop; default the running loop (so it must be built inside one).
    """

    def __init__(self, *, context: Context | None = None, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._context = context
        self._loop = loop or asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[Any]] = set()

    def setup(self, params: TaskManagerParams) -> None:
        """Deprecated no-op (the constructor takes the loop)."""
        warnings.warn(
            "`TaskManager.setup` is deprecated since 1.5.0 and will be removed in 2.0.0. Use `TaskManager` instead.",
            DeprecationWarning,
            stacklevel=2,
        )

    def get_event_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def create_task(self, coroutine: Coroutine[Any, Any, Any], name: str, context: Context | None = None) -> asyncio.Task[Any]:
        task = self._loop.create_task(_logged(coroutine, name), name=name, context=context or self._context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if inspect.iscoroutine(coroutine):
            # Cancelled before it ever ran, the wrapped coroutine was never awaited: close it, so
            # that Python does not warn about it.
            task.add_done_callback(lambda _: coroutine.close() if inspect.getcoroutinestate(coroutine) == inspect.CORO_CREATED else None)
        return task

    async def cancel_task(self, task: asyncio.Task[Any], timeout: float | None = None) -> None:
        current = asyncio.current_task()
        if task is current:
            logger.warning("%s: ignoring an attempt to cancel the running task", task.get_name())
            return
        before = current.cancelling() if current is not None else 0
        task.cancel()
        try:
            if timeout:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            else:
                await task
        except TimeoutError:
            logger.warning("%s: timed out waiting for the task to cancel", task.get_name())
        except asyncio.CancelledError:
            # Either the task finished cancelling, or we were cancelled while waiting: only the
            # latter may propagate (a count above the one on entry is a fresh cancellation).
            if current is not None and current.cancelling() > before:
                raise
        except Exception:
            logger.exception("%s: failed while being cancelled", task.get_name())

    def current_tasks(self) -> Sequence[asyncio.Task[Any]]:
        return [t for t in self._tasks if not t.done()]

    def __repr__(self) -> str:
        return f"<TaskManager tasks={len(self._tasks)}>"


async def _logged(coroutine: Coroutine[Any, Any, Any], name: str) -> Any:
    try:
        return await coroutine
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("task %s failed", name)
        return None
