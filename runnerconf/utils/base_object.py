"""``BaseObject``: a name, a task manager and named events, for runners, buses and workers.

Mirrors ``pipecat.utils.base_object.BaseObject``. Events are declared by name
(:meth:`_register_event_handler`, or a class's ``_event_names``); handlers are added with
:meth:`event_handler` / :meth:`add_event_handler`, get the object first, may be sync or async,
and each call runs in a task of its own, so a slow or failing handler never blocks the emitter.

All of a base object's own state lives in one attribute, ``self._rc`` (a slotted record), so that
subclasses are free to use any other attribute name (``self._stop``, ``self._task``, ...).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import Callable, Coroutine
from contextvars import Context
from typing import Any, ClassVar

from runnerconf.utils.asyncio.task_manager import BaseTaskManager

__all__ = ["BaseObject", "ObjectCore"]

logger = logging.getLogger(__name__)

_ids = itertools.count(1)
_counters: dict[type, itertools.count[int]] = {}


def default_name(obj: object) -> str:
    """``ClassName#N``, counted per class."""
    counter = _counters.get(type(obj))
    if counter is None:
        counter = _counters[type(obj)] = itertools.count(1)
    return f"{type(obj).__name__}#{next(counter)}"


class ObjectCore:
    """The private state of a :class:`BaseObject` (subclasses extend it with their own slots)."""

    __slots__ = ("id", "name", "task_manager", "handlers", "event_tasks", "extra_events")

    def __init__(self) -> None:
        self.handlers: dict[str, list[Callable[..., Any]]] | None = None
        self.event_tasks: set[asyncio.Task[None]] | None = None
        # Events registered on the instance (pipecat-style ``_register_event_handler``): name -> sync.
        self.extra_events: dict[str, bool] | None = None


class BaseObject:
    """Base of runners, buses and workers: identity, task manager, events.

    Args:
        name: The object's name; default ``ClassName#N``.
        task_manager: Task manager for :meth:`create_task`; a runner passes its own otherwise.
    """

    #: Events every instance of the class has (merged along the MRO).
    _event_names: ClassVar[tuple[str, ...]] = ()
    #: Events whose handlers are awaited in turn by the emitter instead of each in its own task.
    _sync_events: ClassVar[frozenset[str]] = frozenset()
    _core_type: ClassVar[type[ObjectCore]] = ObjectCore
    _known_events_cache: ClassVar[dict[type, frozenset[str]]] = {}

    def __init__(self, *, name: str | None = None, task_manager: BaseTaskManager | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        rc = self._core_type()
        rc.id = next(_ids)
        rc.name = name or default_name(self)
        rc.task_manager = task_manager
        self._rc = rc

    @property
    def id(self) -> int:
        """A process-wide unique number."""
        return self._rc.id

    @property
    def name(self) -> str:
        """The object's name."""
        return self._rc.name

    @property
    def task_manager(self) -> BaseTaskManager:
        """The task manager (RuntimeError before :meth:`setup` gave one)."""
        tm = self._rc.task_manager
        if tm is None:
            raise RuntimeError(f"{self}: TaskManager is not initialized")
        return tm

    async def setup(self, task_manager: BaseTaskManager) -> None:
        """Give the object a task manager (owners call this on the objects they run)."""
        self._rc.task_manager = task_manager

    def create_task(
        self, coroutine: Coroutine[Any, Any, Any], name: str | None = None, context: Context | None = None
    ) -> asyncio.Task[Any]:
        """A task on this object's task manager, named ``<object>::<name>``."""
        if not name:
            code = getattr(coroutine, "cr_code", None)
            name = getattr(code, "co_name", "task")
        return self.task_manager.create_task(coroutine, f"{self}::{name}", context)

    async def cancel_task(self, task: asyncio.Task[Any], timeout: float | None = 1.0) -> None:
        """Cancel a task and wait for it (bounded by ``timeout``: some libraries swallow cancellation)."""
        await self.task_manager.cancel_task(task, timeout)

    async def cleanup(self) -> None:
        """Wait for event handlers still running (but the one calling this)."""
        tasks = self._rc.event_tasks
        if tasks:
            current = asyncio.current_task()
            pending = [t for t in tasks if t is not current]
            if pending:
                await asyncio.wait(pending)

    # -- events --------------------------------------------------------------------------------

    @classmethod
    def _class_events(cls) -> frozenset[str]:
        known = BaseObject._known_events_cache.get(cls)
        if known is None:
            known = frozenset(e for klass in cls.__mro__ for e in vars(klass).get("_event_names", ()))
            BaseObject._known_events_cache[cls] = known
        return known

    def _register_event_handler(self, event_name: str, sync: bool = False) -> None:
        """Declare an event on this instance (``sync``: handlers are awaited in turn)."""
        rc = self._rc
        if event_name in self._class_events() or (rc.extra_events and event_name in rc.extra_events):
            logger.warning("%s: event %s already registered", self, event_name)
            return
        if rc.extra_events is None:
            rc.extra_events = {}
        rc.extra_events[event_name] = sync

    def _has_event(self, event_name: str) -> bool:
        extra = self._rc.extra_events
        return event_name in self._class_events() or (extra is not None and event_name in extra)

    def event_handler(self, event_name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``@obj.event_handler("on_ready")``."""

        def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
            self.add_event_handler(event_name, handler)
            return handler

        return decorator

    def add_event_handler(self, event_name: str, handler: Callable[..., Any]) -> None:
        """Add ``handler`` to ``event_name``.

        Raises:
            ValueError: the object has no such event (pipecat only logs this; a misspelt event
                name would otherwise never fire, silently).
        """
        if not self._has_event(event_name):
            known = ", ".join(sorted(self._class_events() | set(self._rc.extra_events or ())))
            raise ValueError(f"{self}: unknown event {event_name!r}; expected one of {known}")
        rc = self._rc
        if rc.handlers is None:
            rc.handlers = {}
        rc.handlers.setdefault(event_name, []).append(handler)

    def remove_event_handler(self, event_name: str, handler: Callable[..., Any]) -> None:
        """Remove a handler added before (no-op otherwise)."""
        handlers = (self._rc.handlers or {}).get(event_name)
        if handlers and handler in handlers:
            handlers.remove(handler)

    def _event_is_sync(self, event_name: str) -> bool:
        extra = self._rc.extra_events
        if extra is not None and event_name in extra:
            return extra[event_name]
        return event_name in self._sync_events

    async def _call_event_handler(self, event_name: str, *args: Any, **kwargs: Any) -> None:
        """Run every handler of ``event_name`` with ``(self, *args)``."""
        handlers = self._rc.handlers
        if not handlers:
            return
        chosen = handlers.get(event_name)
        if not chosen:
            return
        if self._event_is_sync(event_name):
            for handler in list(chosen):
                await self._run_handler(event_name, handler, args, kwargs)
            return
        self._fire(event_name, *args, **kwargs)

    def _fire(self, event_name: str, *args: Any, **kwargs: Any) -> None:
        """Start every handler of ``event_name`` in a task of its own (for synchronous code)."""
        rc = self._rc
        chosen = (rc.handlers or {}).get(event_name)
        if not chosen:
            return
        if rc.event_tasks is None:
            rc.event_tasks = set()
        loop = asyncio.get_running_loop()
        for handler in list(chosen):
            task = loop.create_task(self._run_handler(event_name, handler, args, kwargs), name=f"{self}::{event_name}")
            rc.event_tasks.add(task)
            task.add_done_callback(rc.event_tasks.discard)

    async def _run_handler(self, event_name: str, handler: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            result = handler(self, *args, **kwargs)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("%s: %s handler %r failed", self, event_name, handler)

    def __str__(self) -> str:
        return self._rc.name
