"""What a runner remembers of finished workers: recent outcomes and counts, bounded.

A long-lived runner (``auto_end=False``) may start and finish millions of short-lived workers; it
keeps the latest outcomes, the counts of all of them, and the most recent names known to have been
ready (for ``depends_on``), never one record per worker for ever.
"""

from __future__ import annotations

import traceback
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, fields

__all__ = ["MAX_RESULTS", "MAX_RECENT_NAMES", "Outcomes", "RecentNames", "WorkerResult", "result_of"]

#: Outcomes kept by name (the oldest are forgotten beyond; the counts keep every one).
MAX_RESULTS = 1000
#: Names remembered as having been ready.
MAX_RECENT_NAMES = 10_000
#: Failed outcomes that keep their exception's traceback frames (older ones keep the exception).
_KEEP_FRAMES = 50

OUTCOMES = ("finished", "failed", "cancelled", "abandoned")


@dataclass(frozen=True, slots=True)
class WorkerResult:
    """How one worker's life ended."""

    name: str
    #: ``finished``, ``failed``, ``cancelled`` or ``abandoned`` (ignored cancellation).
    outcome: str
    duration: float
    root: bool
    error: BaseException | None = None
    #: A command's exit code (None for an in-process worker, or a process that never ran).
    returncode: int | None = None


# The slot setters of WorkerResult, in field order (see result_of).
_SETTERS = tuple(WorkerResult.__dict__[f.name].__set__ for f in fields(WorkerResult))


def result_of(
    name: str, outcome: str, duration: float, root: bool, error: BaseException | None = None, returncode: int | None = None
) -> WorkerResult:
    """``WorkerResult(...)``, made the quick way: its slots filled directly. A runner makes one
    for every worker that ends, and the frozen dataclass's own ``__init__`` (a generic
    ``object.__setattr__`` per field) was a sixth of ending an idle worker."""
    result = object.__new__(WorkerResult)
    set_name, set_outcome, set_duration, set_root, set_error, set_returncode = _SETTERS
    set_name(result, name)
    set_outcome(result, outcome)
    set_duration(result, duration)
    set_root(result, root)
    set_error(result, error)
    set_returncode(result, returncode)
    return result


class RecentNames:
    """A set of names that forgets the oldest beyond ``limit``."""

    def __init__(self, limit: int = MAX_RECENT_NAMES) -> None:
        self._names: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def add(self, name: str) -> None:
        names = self._names
        if name in names:
            names.move_to_end(name)
            return
        names[name] = None
        if len(names) > self._limit:
            names.popitem(last=False)

    def discard(self, name: str) -> None:
        self._names.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)


class Outcomes:
    """Recent :class:`WorkerResult` objects by name, and the count of every outcome."""

    def __init__(self, limit: int = MAX_RESULTS) -> None:
        self.results: OrderedDict[str, WorkerResult] = OrderedDict()
        self.counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self._limit = limit
        self._failures: list[str] = []

    def record(self, result: WorkerResult) -> None:
        results = self.results
        results.pop(result.name, None)  # a reused name keeps its latest outcome, at the end
        results[result.name] = result
        if len(results) > self._limit:
            results.popitem(last=False)
        self.counts[result.outcome] = self.counts.get(result.outcome, 0) + 1
        if result.outcome == "failed" and result.error is not None:
            # Tracebacks hold every frame's locals: only the latest few failures keep theirs.
            self._failures.append(result.name)
            if len(self._failures) > _KEEP_FRAMES:
                old = results.get(self._failures.pop(0))
                if old is not None and old.error is not None and old.error.__traceback__ is not None:
                    traceback.clear_frames(old.error.__traceback__)

    @property
    def failed(self) -> list[WorkerResult]:
        """Recent results of workers that failed or were abandoned."""
        return [r for r in self.results.values() if r.outcome in ("failed", "abandoned")]

    def any_failed(self) -> bool:
        """Whether any worker ever failed or was abandoned (recent or not)."""
        return bool(self.counts.get("failed") or self.counts.get("abandoned"))
