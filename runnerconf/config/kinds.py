"""Worker kinds: the built-in ones and those packages declare, each validated by its own model.

A package declares a kind under the entry-point group ``runnerconf.workers``::

    [project.entry-points."runnerconf.workers"]
    stt_pipeline = "mypkg.workers:SttPipeline"

naming a :class:`~runnerconf.workers.base_worker.BaseWorker` subclass whose parameters are described
by a pydantic model -- a nested ``Params`` class -- or by the type hints of its ``__init__``. A
topology then writes ``type: stt_pipeline`` with ``params:``, checked against that model (unknown,
missing or ill-typed params are errors with their line) without importing the topology's own
modules, and ``runnerconf schema`` has a branch for it. The built-in kinds are declared the same
way, by runnerconf's own entry points (they name a :class:`WorkerKind` directly).

Entry points are read only when a topology uses a kind that is not built in, and for ``schema``
and ``kinds``: a topology of built-in kinds never pays for them.
"""

from __future__ import annotations

import functools
import inspect
import logging
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model

from runnerconf.config.checks import WORKER_KIND_KEYS, WorkerTag
from runnerconf.config.worker_models import (
    TAG_PREFIX,
    ClassWorkerConfig,
    CommandWorkerConfig,
    FactoryWorkerConfig,
    PipecatPipelineWorkerConfig,
    PipelineWorkerConfig,
    WorkerBase,
)

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "WORKER_KIND_KEYS",
    "WorkerKind",
    "builtin_kinds",
    "installed_kinds",
    "kinds_for",
    "params_model",
    "worker_union",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "runnerconf.workers"


@dataclass(frozen=True)
class WorkerKind:
    """One ``type:`` of worker.

    Attributes:
        name: The value of ``type``.
        model: The model of the whole worker mapping (None for a kind that failed to load).
        worker: Import path of the worker class, for display.
        source: Where the kind comes from (runnerconf, or a distribution and its entry point).
        target: The worker class of a kind from a package (built-ins are built by the builder).
        params: The model of ``params`` of a kind from a package.
        error: Why a package's kind could not be loaded.
    """

    name: str
    model: type[WorkerBase] | None
    worker: str
    source: str = "runnerconf (built-in)"
    target: type | None = None
    params: type[BaseModel] | None = field(default=None, compare=False)
    error: str | None = None

    @property
    def builtin(self) -> bool:
        return self.target is None and self.error is None


PIPELINE = WorkerKind("pipeline", PipelineWorkerConfig, "runnerconf.pipeline.worker:PipelineWorker")
COMMAND = WorkerKind("command", CommandWorkerConfig, "runnerconf.workers.command:CommandWorker")
#: Its model imports nothing of pipecat: only building one does (the `pipecat` extra).
PIPECAT_PIPELINE = WorkerKind(
    "pipecat_pipeline", PipecatPipelineWorkerConfig, "runnerconf.pipecat.worker:PipecatPipelineWorker", "runnerconf (built-in; the pipecat extra)"
)
#: The kinds runnerconf itself provides (also declared as its entry points).
BUILTIN: dict[str, WorkerKind] = {k.name: k for k in (PIPELINE, COMMAND, PIPECAT_PIPELINE)}


def builtin_kinds() -> dict[str, WorkerKind]:
    """The built-in kinds by name."""
    return dict(BUILTIN)


@functools.cache
def installed_kinds() -> dict[str, WorkerKind]:
    """Every kind: the built-in ones and those of installed packages' entry points (read once)."""
    from importlib.metadata import entry_points

    kinds = builtin_kinds()
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "?"
        where = f"{dist} (entry point {ep.name} = {ep.value})"
        if ep.name in BUILTIN and ep.value.startswith("runnerconf."):
            continue  # runnerconf's own declaration of a built-in kind
        if ep.name in kinds or ep.name in ("class", "factory"):
            kinds[ep.name] = WorkerKind(ep.name, None, ep.value, where, error=f"the kind {ep.name!r} is already defined")
            continue
        try:
            target = ep.load()
        except BaseException as exc:  # a broken package: one clear error, never a traceback
            kinds[ep.name] = WorkerKind(ep.name, None, ep.value, where, error=f"importing it raised {type(exc).__name__}: {exc}")
            continue
        kinds[ep.name] = plugin_kind(ep.name, target, ep.value, where)
    return kinds


def kinds_for(types: Iterable[Any]) -> dict[str, WorkerKind]:
    """The kinds a document needs: the built-in ones, and the installed ones if it uses a
    ``type`` that is not built in."""
    if all(t in BUILTIN for t in types if isinstance(t, str)):
        return BUILTIN
    return installed_kinds()


def plugin_kind(name: str, target: Any, path: str, source: str) -> WorkerKind:
    """The kind of a worker class from a package."""
    if isinstance(target, WorkerKind):
        return target
    from runnerconf.workers.base_worker import BaseWorker

    if not (isinstance(target, type) and issubclass(target, BaseWorker)):
        return WorkerKind(name, None, path, source, error=f"{path} is not a BaseWorker subclass")
    try:
        params = params_model(target)
    except Exception as exc:
        return WorkerKind(name, None, path, source, error=f"its params cannot be described: {type(exc).__name__}: {exc}")
    assert params is not None
    required = any(f.is_required() for f in params.model_fields.values())
    model = create_model(  # type: ignore[call-overload]
        f"{''.join(p.capitalize() for p in name.replace('-', '_').split('_'))}Worker",
        __base__=WorkerBase,
        __doc__=(inspect.getdoc(target) or f"A {target.__name__} worker.").splitlines()[0] + f" ({source})",
        type=(Literal[name], Field(description=f"Worker kind from {source}.")),
        params=(params, Field(..., description=f"Parameters of {target.__name__}.") if required
                else Field(default_factory=params, description=f"Parameters of {target.__name__}.")),
    )
    return WorkerKind(name, model, path, source, target=target, params=params)


def params_model(cls: type) -> type[BaseModel] | None:
    """A pydantic model of a worker class's parameters: its ``Params`` class, or one read from
    its ``__init__`` (keyword parameters and their type hints; ``**kwargs: Unpack[TypedDict]``
    adds the TypedDict's keys). None when ``__init__`` takes any ``**kwargs``."""
    declared = getattr(cls, "Params", None)
    if isinstance(declared, type) and issubclass(declared, BaseModel):
        config = {**declared.model_config, "extra": "forbid"}
        return type(declared.__name__, (declared,), {"model_config": config, "__module__": declared.__module__})
    init = cls.__init__  # type: ignore[misc]
    signature = inspect.signature(init)
    try:
        hints = typing.get_type_hints(init, include_extras=True)
    except Exception:
        hints = {}
    fields: dict[str, Any] = {}
    for pname, param in list(signature.parameters.items())[1:]:
        if pname == "name" or param.kind is param.VAR_POSITIONAL:
            continue
        hint = hints.get(pname, Any)
        if param.kind is param.VAR_KEYWORD:
            unpacked = _unpacked(hint)
            if unpacked is None:
                return None  # anything goes: nothing to check
            for key, kind in typing.get_type_hints(unpacked).items():
                fields[key] = (kind, ... if key in getattr(unpacked, "__required_keys__", ()) else None)
            continue
        fields[pname] = (hint, ... if param.default is param.empty else param.default)
    return create_model(f"{cls.__name__}Params", __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True), **fields)  # type: ignore[call-overload, no-any-return]


def _unpacked(hint: Any) -> Any:
    """The TypedDict of ``Unpack[TypedDict]``, if ``hint`` is one."""
    if typing.get_origin(hint) is typing.Unpack:
        (inner,) = typing.get_args(hint)
        return inner
    return None


def worker_union(kinds: dict[str, WorkerKind]) -> Any:
    """The type of one worker mapping, for these kinds (tagged by its kind key)."""
    members: list[Any] = [
        Annotated[ClassWorkerConfig, Tag(f"{TAG_PREFIX}class")],
        Annotated[FactoryWorkerConfig, Tag(f"{TAG_PREFIX}factory")],
    ]
    members += [Annotated[k.model, Tag(f"{TAG_PREFIX}{k.name}")] for k in kinds.values() if k.model is not None]
    return Annotated[
        Union[tuple(members)],  # type: ignore[valid-type]
        Discriminator(
            WorkerTag(name for name, k in kinds.items() if k.model is not None),
            custom_error_type="worker-kind",
            custom_error_message="a worker needs exactly one of `class`, `factory` or a `type`",
        ),
    ]
