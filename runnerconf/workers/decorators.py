"""Method decorators of workers: ``@job`` handlers and ``@worker_ready`` watchers.

As ``pipecat.pipeline.job_decorator`` and ``pipecat.pipeline.worker_ready_decorator``. The
decorated methods of a class are collected once per class, not once per worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["job", "job_handlers_of", "ready_handlers_of", "worker_ready"]

F = TypeVar("F", bound=Callable[..., Any])

_JOB_HANDLERS: dict[type, dict[str, str]] = {}
_READY_HANDLERS: dict[type, dict[str, str]] = {}


def job(*, name: str, sequential: bool = False) -> Callable[[F], F]:
    """Make a worker method the handler of the job requests named ``name``.

    Each request runs in a task of its own, so the worker keeps receiving messages meanwhile;
    with ``sequential=True`` requests of that name run one at a time, in order (the wait counts
    against the requester's timeout).
    """

    def decorate(fn: F) -> F:
        fn.is_job_handler = True  # type: ignore[attr-defined]
        fn.job_name = name  # type: ignore[attr-defined]
        fn.job_sequential = sequential  # type: ignore[attr-defined]
        return fn

    return decorate


def worker_ready(*, name: str) -> Callable[[F], F]:
    """Make a worker method the watcher of the worker named ``name``: called with its
    :class:`~runnerconf.registry.types.WorkerReadyData` when it is ready."""

    def decorate(fn: F) -> F:
        fn.worker_ready_name = name  # type: ignore[attr-defined]
        return fn

    return decorate


def _collect(cls: type, marker: str, key: str, what: str) -> dict[str, str]:
    found: dict[str, str] = {}
    seen: set[str] = set()
    for klass in cls.__mro__:
        for attr, value in vars(klass).items():
            if attr in seen:
                continue  # overridden further down the hierarchy
            seen.add(attr)
            if callable(value) and getattr(value, marker, False):
                name = getattr(value, key)
                if name in found:
                    raise ValueError(f"Duplicate {what} handler for {name!r}: {attr!r} conflicts with {found[name]!r}")
                found[name] = attr
    return found


def job_handlers_of(cls: type) -> dict[str, str]:
    """``job name -> method name`` for the ``@job`` methods of ``cls`` (cached)."""
    handlers = _JOB_HANDLERS.get(cls)
    if handlers is None:
        handlers = _JOB_HANDLERS[cls] = _collect(cls, "is_job_handler", "job_name", "@job")
    return handlers


def ready_handlers_of(cls: type) -> dict[str, str]:
    """``worker name -> method name`` for the ``@worker_ready`` methods of ``cls`` (cached)."""
    handlers = _READY_HANDLERS.get(cls)
    if handlers is None:
        handlers = _READY_HANDLERS[cls] = _collect(cls, "worker_ready_name", "worker_ready_name", "@worker_ready")
    return handlers
