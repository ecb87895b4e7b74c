"""Messages carried by a :class:`~runnerconf.bus.WorkerBus` (the classes of ``pipecat.bus.messages``).

Every message has an ``id`` (unique in the process), a ``name`` (``ClassName#id``), the ``source``
(the sender's name) and an optional ``target`` (the one subscriber it is for; ``None`` broadcasts
it). Two priority classes: subclasses of :class:`BusSystemMessage` are delivered before any queued
:class:`BusDataMessage`. The :class:`BusLocalMessage` mixin marks messages that never leave the
process (they may carry live Python objects, such as a worker to add).

Define your own messages as dataclasses deriving from :class:`BusDataMessage` (or
:class:`BusSystemMessage`); to send them over a network bus, register them with
:func:`runnerconf.bus.wire.register_message_type`. ``BusDataMessage`` itself carries a ``payload``
(any JSON value over a network bus), which is what :meth:`BaseWorker.send` sends.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from runnerconf.registry.types import WorkerRegistryEntry

if TYPE_CHECKING:
    from runnerconf.workers.base_worker import BaseWorker
    from runnerconf.workers.job_context import JobStatus

__all__ = [
    "BusActivateWorkerMessage",
    "BusAddWorkerMessage",
    "BusCancelMessage",
    "BusCancelWorkerMessage",
    "BusDataMessage",
    "BusDeactivateWorkerMessage",
    "BusEndMessage",
    "BusEndWorkerMessage",
    "BusFlushProgressMessage",
    "BusFrameMessage",
    "BusJobCancelMessage",
    "BusJobRequestMessage",
    "BusJobResponseMessage",
    "BusJobResponseUrgentMessage",
    "BusJobStreamDataMessage",
    "BusJobStreamEndMessage",
    "BusJobStreamStartMessage",
    "BusJobUpdateMessage",
    "BusJobUpdateRequestMessage",
    "BusJobUpdateUrgentMessage",
    "BusLocalMessage",
    "BusMessage",
    "BusSystemMessage",
    "BusTTSSpeakMessage",
    "BusWorkerErrorMessage",
    "BusWorkerLocalErrorMessage",
    "BusWorkerReadyMessage",
    "BusWorkerRegistryMessage",
    "WorkerRegistryEntry",
]

_ids = itertools.count(1).__next__


# -- base types --------------------------------------------------------------------------------


@dataclass(kw_only=True, slots=True)
class BusMessage:
    """Base of every bus message.

    Attributes:
        id: Unique in this process (never carried over the network).
        source: Name of the sender (a worker or a runner).
        target: Name of the subscriber the message is for, or ``None`` to broadcast it.
    """

    #: True for messages that jump ahead of queued data messages (set per class).
    system: ClassVar[bool] = False
    #: True for messages that are never published beyond this process (set per class).
    local: ClassVar[bool] = False

    id: int = field(init=False, default_factory=_ids, repr=False, compare=False)
    source: str
    target: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # (No super() call: slotted dataclasses are rebuilt, which breaks zero-argument super()
        # here, and object.__init_subclass__ does nothing.)
        # Priority and locality follow the class hierarchy, whatever the order of the bases
        # (pipecat writes ``class M(BusSystemMessage, BusLocalMessage)``).
        cls.system = any(vars(k).get("_system_root", False) for k in cls.__mro__)
        cls.local = any(vars(k).get("_local_root", False) for k in cls.__mro__)

    @property
    def name(self) -> str:
        """``ClassName#id``."""
        return f"{type(self).__name__}#{self.id}"

    def __str__(self) -> str:
        return f"{self.name} (source={self.source}, target={self.target})"


@dataclass(kw_only=True, slots=True)
class BusDataMessage(BusMessage):
    """A normal-priority message, delivered in send order after queued system messages.

    Attributes:
        payload: What :meth:`BaseWorker.send` carries (a JSON value over a network bus).
            Lifecycle and job messages derive from this class too; they are never handed to a
            worker's handler as data.
    """

    payload: Any = None


@dataclass(kw_only=True, slots=True)
class BusSystemMessage(BusMessage):
    """A high-priority message: delivered before every data message already queued."""

    _system_root: ClassVar[bool] = True


class BusLocalMessage:
    """Mixin marking a message as local-only: delivered in-process, never published."""

    __slots__ = ()
    _local_root: ClassVar[bool] = True


# -- frames and pipeline commands (pipecat pipelines) -------------------------------------------


@dataclass(kw_only=True, slots=True)
class BusFrameMessage(BusDataMessage):
    """A pipecat frame carried between pipelines (``direction`` is a pipecat ``FrameDirection``)."""

    frame: Any
    direction: Any
    bridge: str | None = None


@dataclass(kw_only=True, slots=True)
class BusTTSSpeakMessage(BusDataMessage):
    """Asks a pipecat pipeline worker to speak ``text`` (defined for pipecat code; not handled here)."""

    text: str
    append_to_context: bool = True


@dataclass(kw_only=True, slots=True)
class BusFlushProgressMessage(BusDataMessage):
    """A pipecat pipeline answering a flush probe says it still progresses (defined for pipecat code)."""

    flush_id: int


# -- worker lifecycle ---------------------------------------------------------------------------


@dataclass(kw_only=True, slots=True)
class BusActivateWorkerMessage(BusDataMessage):
    """Tells the target worker to become active; ``args`` reach its ``on_activated``."""

    args: dict[str, Any] | None = None


@dataclass(kw_only=True, slots=True)
class BusDeactivateWorkerMessage(BusDataMessage):
    """Tells the target worker to become inactive."""


@dataclass(kw_only=True, slots=True)
class BusEndMessage(BusDataMessage):
    """Asks runners to end gracefully (its ``target`` runner, or every runner when broadcast)."""

    reason: str | None = None


@dataclass(kw_only=True, slots=True)
class BusEndWorkerMessage(BusDataMessage):
    """Asks the target worker to finish gracefully (it wraps up, then its ``main()`` returns)."""

    reason: str | None = None


@dataclass(kw_only=True, slots=True)
class BusCancelMessage(BusSystemMessage):
    """Asks runners to cancel at once (its ``target`` runner, or every runner when broadcast)."""

    reason: str | None = None


@dataclass(kw_only=True, slots=True)
class BusCancelWorkerMessage(BusSystemMessage):
    """Asks the target worker to stop at once."""

    reason: str | None = None


# -- registry and errors ------------------------------------------------------------------------


@dataclass(kw_only=True, slots=True)
class BusWorkerRegistryMessage(BusSystemMessage):
    """Exchanged between runners that share a bus: what runs where.

    Attributes:
        runner: The runner whose workers are listed.
        workers: Workers that became ready (in a full roster: every ready worker).
        removed: Names of workers that were ready and finished since (in a full roster: all of
            them), so that a ``depends_on`` on them is known to be met.
        hello: The runner has just started: peers answer with their whole registry.
        full: ``workers`` is the whole roster (peers drop what is not in it).
        left: The runner is stopping: peers forget it and its workers.
    """

    runner: str
    workers: list[WorkerRegistryEntry] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    hello: bool = False
    full: bool = False
    left: bool = False


@dataclass(kw_only=True, slots=True)
class BusWorkerReadyMessage(BusDataMessage):
    """A worker is ready (pipecat broadcasts it; runnerconf tells readiness through the registry)."""

    runner: str
    parent: str | None = None
    active: bool = False
    bridged: bool = False
    started_at: float | None = None


@dataclass(kw_only=True, slots=True)
class BusWorkerErrorMessage(BusSystemMessage):
    """A root worker reports an error (crosses the network)."""

    error: str


@dataclass(kw_only=True, slots=True)
class BusAddWorkerMessage(BusLocalMessage, BusSystemMessage):
    """Local-only: asks the runner that receives it to add ``worker``."""

    worker: BaseWorker


@dataclass(kw_only=True, slots=True)
class BusWorkerLocalErrorMessage(BusLocalMessage, BusSystemMessage):
    """Local-only: a child worker reports an error to its parent (``on_worker_failed``)."""

    error: str


# -- jobs ---------------------------------------------------------------------------------------


@dataclass(kw_only=True, slots=True)
class BusJobRequestMessage(BusDataMessage):
    """Asks the target worker to run a job (``job_name`` picks an ``@job`` handler)."""

    job_id: str
    job_name: str | None = None
    payload: dict[str, Any] | None = None


@dataclass(kw_only=True, slots=True)
class BusJobResponseMessage(BusDataMessage):
    """A job's outcome, sent back to the requester."""

    job_id: str
    status: JobStatus
    response: dict[str, Any] | None = None


@dataclass(kw_only=True, slots=True)
class BusJobResponseUrgentMessage(BusSystemMessage):
    """A job's outcome, delivered ahead of queued data."""

    job_id: str
    status: JobStatus
    response: dict[str, Any] | None = None


@dataclass(kw_only=True, slots=True)
class BusJobUpdateMessage(BusDataMessage):
    """Progress of a job, sent to the requester."""

    job_id: str
    update: dict[str, Any] | None = None


@dataclass(kw_only=True, slots=True)
class BusJobUpdateUrgentMessage(BusSystemMessage):
    """Progress of a job, delivered ahead of queued data."""

    job_id: str
    update: dict[str, Any] | None = None


@dataclass(kw_only=True, slots=True)
class BusJobUpdateRequestMessage(BusDataMessage):
    """The requester asks a worker for a progress update."""

    job_id: str


@dataclass(kw_only=True, slots=True)
class BusJobCancelMessage(BusSystemMessage):
    """The requester cancels a job."""

    job_id: str
    reason: str | None = None


@dataclass(kw_only=True, slots=True)
class BusJobStreamStartMessage(BusDataMessage):
    """A worker starts streaming a job's result."""

    job_id: str
    data: dict[str, Any] | None = None


@dataclass(kw_only=True, slots=True)
class BusJobStreamDataMessage(BusDataMessage):
    """One chunk of a streamed job result."""

    job_id: str
    data: dict[str, Any] | None = None


@dataclass(kw_only=True, slots=True)
class BusJobStreamEndMessage(BusDataMessage):
    """The end of a streamed job result (the job is complete)."""

    job_id: str
    data: dict[str, Any] | None = None
