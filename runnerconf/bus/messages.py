"""Messages carried by a :class:`~runnerconf.bus.WorkerBus`.

Every message names its ``source`` (the sender's name) and, optionally, a ``target`` (the name of
the one subscriber it is for; ``None`` broadcasts it). Two priority classes exist: subclasses of
:class:`BusSystemMessage` are delivered before any queued :class:`BusDataMessage`. The
:class:`BusLocalMessage` mixin marks messages that never leave the process (they may carry live
Python objects, such as a worker to add).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from runnerconf.workers.base_worker import BaseWorker

__all__ = [
    "BusAddWorkerMessage",
    "BusCancelMessage",
    "BusCancelWorkerMessage",
    "BusDataMessage",
    "BusEndMessage",
    "BusEndWorkerMessage",
    "BusLocalMessage",
    "BusMessage",
    "BusSystemMessage",
    "BusWorkerReadyMessage",
    "BusWorkerRegistryMessage",
    "WorkerRegistryEntry",
]


@dataclass(kw_only=True, slots=True)
class BusMessage:
    """Base of every bus message.

    Attributes:
        source: Name of the sender (a worker or a runner).
        target: Name of the subscriber the message is for, or ``None`` to broadcast it.
    """

    #: True for messages that jump ahead of queued data messages.
    system: ClassVar[bool] = False
    #: True for messages that are never published beyond this process.
    local: ClassVar[bool] = False

    source: str
    target: str | None = None

    def __str__(self) -> str:
        return f"{type(self).__name__} (source={self.source}, target={self.target})"


@dataclass(kw_only=True, slots=True)
class BusDataMessage(BusMessage):
    """A normal-priority message; as such it carries an application ``payload``.

    Lifecycle messages of normal priority (:class:`BusEndWorkerMessage`, ...) derive from it.
    A payload sent over a network bus must be a JSON value.
    """

    payload: Any = None


@dataclass(kw_only=True, slots=True)
class BusSystemMessage(BusMessage):
    """A high-priority message: delivered before every data message already queued."""

    system: ClassVar[bool] = True


class BusLocalMessage:
    """Mixin marking a message as local-only: delivered in-process, never published."""

    __slots__ = ()
    local: ClassVar[bool] = True


@dataclass(kw_only=True, slots=True)
class BusEndMessage(BusDataMessage):
    """Asks a runner (its ``target``, or every runner when broadcast) to end gracefully."""

    reason: str | None = None


@dataclass(kw_only=True, slots=True)
class BusCancelMessage(BusSystemMessage):
    """Asks a runner (its ``target``, or every runner when broadcast) to cancel at once."""

    reason: str | None = None


@dataclass(kw_only=True, slots=True)
class BusEndWorkerMessage(BusDataMessage):
    """Asks the target worker to finish gracefully (it wraps up, then its ``main()`` returns)."""

    reason: str | None = None


@dataclass(kw_only=True, slots=True)
class BusCancelWorkerMessage(BusSystemMessage):
    """Asks the target worker to stop at once."""

    reason: str | None = None


@dataclass(kw_only=True, slots=True)
class BusWorkerReadyMessage(BusDataMessage):
    """Sent by a child worker to its parent once it is ready."""

    runner: str
    parent: str | None = None


@dataclass(kw_only=True, slots=True)
class WorkerRegistryEntry:
    """What the registry knows of a ready worker."""

    name: str
    runner: str
    parent: str | None = None
    started_at: float | None = None


@dataclass(kw_only=True, slots=True)
class BusWorkerRegistryMessage(BusSystemMessage):
    """Exchanged between runners that share a network bus.

    Attributes:
        runner: The runner whose workers are listed.
        workers: Workers that became ready (``added``) since the last message.
        removed: Names of workers that were ready and finished since the last message (in a full
            roster: all of them), so that a ``depends_on`` on them is known to be met.
        hello: True when the runner has just started: peers answer with their whole registry.
        full: True when ``workers`` is the runner's whole roster (peers drop what is not in it).
        left: True when the runner is stopping: peers forget it and its workers.
    """

    runner: str
    workers: list[WorkerRegistryEntry] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    hello: bool = False
    full: bool = False
    left: bool = False


@dataclass(kw_only=True, slots=True)
class BusAddWorkerMessage(BusLocalMessage, BusSystemMessage):
    """Local-only: asks the runner that receives it to add ``worker``."""

    worker: BaseWorker
