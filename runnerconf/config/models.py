"""The topology models: the single definition of every option of a topology file.

The loader validates documents with them, the JSON Schema is generated from them, and the CLI's
``--set`` overrides are checked by them. Every model forbids unknown keys and checks types
strictly (see :mod:`runnerconf.config.types`). Worker models live in
:mod:`runnerconf.config.worker_models`; :func:`topology_model` adds the kinds of installed
packages (:mod:`runnerconf.config.kinds`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from annotated_types import Ge
from pydantic import BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag, WrapValidator, create_model, model_validator

from runnerconf.config.checks import Defaults, KindTag, redis_options_fit_the_wire
from runnerconf.config.kinds import BUILTIN, WORKER_KIND_KEYS, WorkerKind, worker_union
from runnerconf.config.types import IMPORT_PATTERN, NAME_PATTERN, Address, Count, Duration, Flag, Name, PositiveDuration, parse_duration, scalar, text, whole
from runnerconf.config.worker_models import (
    TAG_PREFIX,
    BackoffConfig,
    ClassWorkerConfig,
    CommandWorkerConfig,
    Dependency,
    FactoryWorkerConfig,
    HealthCheckConfig,
    Model,
    PipecatPipelineWorkerConfig,
    PipelineWorkerConfig,
    ProcessorCall,
    WorkerBase,
    choice,
)

__all__ = [
    "BUS_KINDS",
    "IMPORT_PATTERN",
    "NAME_PATTERN",
    "TAG_PREFIX",
    "WORKER_KIND_KEYS",
    "AsyncQueueBusConfig",
    "BackoffConfig",
    "BusConfig",
    "ClassWorkerConfig",
    "PipecatPipelineWorkerConfig",
    "CommandWorkerConfig",
    "Dependency",
    "FactoryWorkerConfig",
    "HealthCheckConfig",
    "PipelineWorkerConfig",
    "ProcessorCall",
    "RedisBusConfig",
    "RunnerConfig",
    "RunnerSection",
    "RunnerSpec",
    "Topology",
    "WorkerBase",
    "WorkerConfig",
    "parse_duration",
    "tagged_models",
    "topology_model",
]


class RunnerConfig(Model):
    """Options of the WorkerRunner."""

    model_config = ConfigDict(title="Runner")

    name: Name | None = Field(None, description="Runner name (unique among runners on a network bus). Default: runner-<8 hex>.")
    handle_sigint: Flag = Field(True, description="Stop on SIGINT (first: graceful, second: cancel).")
    handle_sigterm: Flag = Field(
        True,
        description="Stop on SIGTERM (first: graceful, second: cancel): what docker stop, systemctl stop and Kubernetes send. "
        "True for topologies (the library's WorkerRunner keeps pipecat's default, false).",
    )
    on_signal: choice("end", "cancel") = Field(  # type: ignore[valid-type]
        "end", description="What the first signal does: a graceful end, or an immediate cancel."
    )
    force_gc: Flag = Field(False, description="Run a full garbage collection after the workers are gone.")
    auto_end: Flag = Field(True, description="End the runner once every root worker has finished.")
    on_failure: choice("continue", "end", "cancel") = Field(  # type: ignore[valid-type]
        "continue",
        description="When a worker fails for good (after its restarts): the others go on (continue), or the runner ends or is cancelled.",
    )
    check_dangling_tasks: Flag = Field(True, description="Warn about tasks left on the runner's task manager at the end.")
    stop_timeout: Duration = Field(10.0, description="Grace period of a graceful stop before workers are cancelled.")
    cancel_timeout: Duration = Field(5.0, description="How long a cancelled worker gets before it is abandoned.")
    http: Address | None = Field(
        None,
        description="Serve /healthz, /readyz and /metrics on HOST:PORT while the runner runs (the `http` extra for /metrics).",
        examples=["127.0.0.1:9100", "0.0.0.0:8080"],
    )


class AsyncQueueBusConfig(Model):
    """The in-process bus (the default)."""

    model_config = ConfigDict(title="AsyncQueueBus")

    type: Literal["async_queue"] = Field("async_queue", description="Bus kind.")
    max_queued: Count = Field(10_000, description="Data messages queued per subscriber before senders wait.")


class ReconnectConfig(Model):
    """Backoff between reconnection attempts."""

    model_config = ConfigDict(title="Reconnect")

    initial: PositiveDuration = Field(0.1, description="Delay before the first attempt.")
    max: Duration = Field(5.0, description="Longest delay between attempts.")


URL_PATTERN = r"^(redis|rediss|unix)://"
CHANNEL_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
_URL = Annotated[str, Field(pattern=URL_PATTERN), WrapValidator(text)]
_CHANNEL = Annotated[str, Field(pattern=CHANNEL_PATTERN), WrapValidator(text)]
_TAG = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"), WrapValidator(text)]
#: A secret: 16 characters at least (a ${VAR} stands for one under --no-interpolate).
_SECRET = Annotated[str, Field(min_length=16), WrapValidator(text)]
_SECRETS = Union[_SECRET, Annotated[list[_SECRET], Field(min_length=1)]]


_PIPECAT_WIRE = {"required": ["wire"], "properties": {"wire": {"const": "pipecat"}}}


class RedisBusConfig(Model):
    """A bus on Redis, for runners on several processes or machines (the `redis` extra)."""

    # The rules across options, in the schema as in checks.redis_options_fit_the_wire.
    model_config = ConfigDict(
        title="RedisBus",
        json_schema_extra={
            "allOf": [
                {"if": _PIPECAT_WIRE, "then": {"not": {"anyOf": [
                    {"required": ["delivery"], "properties": {"delivery": {"const": "stream"}}},
                    {"required": ["secret"], "properties": {"secret": {"not": {"type": "null"}}}},
                    {"required": ["secret_file"], "properties": {"secret_file": {"not": {"type": "null"}}}},
                ]}}},
                {"if": {"required": ["data_types"], "properties": {"data_types": {"minItems": 1}}}, "then": _PIPECAT_WIRE},
                {"not": {"required": ["secret", "secret_file"], "properties": {
                    "secret": {"not": {"type": "null"}}, "secret_file": {"not": {"type": "null"}}}}},
            ]
        },
    )  # fmt: skip

    type: Literal["redis"] = Field(description="Bus kind.")
    url: _URL = Field(
        "redis://127.0.0.1:6379/0",
        description="Server URL: redis://[[user]:password@]host:port/db, rediss:// or unix://.",
        examples=["${REDIS_URL:-redis://127.0.0.1:6379/0}"],
    )
    channel: _CHANNEL | None = Field(
        None, description="The channel every runner of the topology shares (default: runnerconf; pipecat:bus, pipecat's, with wire: pipecat)."
    )
    wire: choice("runnerconf", "pipecat") = Field(  # type: ignore[valid-type]
        "runnerconf",
        description="Message format: runnerconf's (batched, versioned), or pipecat's JSON, to share the channel with runners "
        "of pipecat-ai's own WorkerRunner and RedisBus.",
    )
    connect_timeout: Duration = Field(5.0, description="Time to reach the server at start before giving up (exit code 3).")
    reconnect: ReconnectConfig = Field(default_factory=Defaults(ReconnectConfig), description="Backoff after a lost connection.")
    max_batch: Count = Field(512, description="Most messages per PUBLISH.")
    max_buffer: Count = Field(100_000, description="Messages waiting to be published: senders wait beyond while connected; oldest dropped while disconnected.")
    max_frame_bytes: Annotated[int, Ge(1024), WrapValidator(whole)] = Field(8 << 20, description="Frames from peers larger than this are skipped unread.")
    max_queued: Count = Field(10_000, description="Data messages queued per subscriber before senders wait.")
    external_workers: list[Name] = Field(
        default_factory=list,
        description="Workers that run on this bus but not in this file (on a pipecat runner, say): "
        "`watch`, `depends_on` and `send_to` may name them.",
        examples=[["pc-worker"]],
    )
    delivery: choice("pubsub", "stream") = Field(  # type: ignore[valid-type]
        "pubsub",
        description="pubsub: what is published while a runner is away is lost for it; stream: Redis Streams, each runner "
        "reads with a consumer group named after it, acknowledges what its workers handled, and resumes where it left off.",
    )
    max_len: Count | None = Field(100_000, description="With delivery: stream, about how many entries the stream keeps (MAXLEN ~).")
    retention: Duration | None = Field(None, description="With delivery: stream, how long entries are kept (null: no age bound).")
    secret: _SECRETS | None = Field(
        None,
        description="Sign every frame (HMAC-SHA256) and refuse frames not signed with it: a secret of 16 or more characters, "
        "or a list (the first signs, all verify: key rotation). Use ${VAR}: never write it in the file.",
        examples=["${RUNNERCONF_BUS_SECRET}"],
    )
    secret_file: str | None = Field(
        None, description="A file holding the secret(s), one per line, the first signing (relative to the topology file)."
    )
    max_age: PositiveDuration = Field(60.0, description="How long a signed frame stays valid (and the clock skew allowed).")
    data_types: list[_TAG] = Field(
        default_factory=list,
        description="With wire: pipecat, pipecat BusDataMessage subclasses (module.Class, as pipecat's serializer tags them; "
        "never imported) read as data: their `payload` field, or their fields, become the payload.",
        examples=[["myapp.messages.ChatMessage"]],
    )

    _options_fit_the_wire = model_validator(mode="after")(redis_options_fit_the_wire)

    @property
    def signed(self) -> bool:
        """Whether frames are signed."""
        return self.secret is not None or self.secret_file is not None

    @property
    def channel_name(self) -> str:
        """The channel: as set, or the default of the wire."""
        return self.channel or ("pipecat:bus" if self.wire == "pipecat" else "runnerconf")


#: Bus kinds by their `type`.
BUS_KINDS: dict[str, type[Model]] = {"async_queue": AsyncQueueBusConfig, "redis": RedisBusConfig}


BusConfig = Annotated[
    Union[tuple(Annotated[m, Tag(f"{TAG_PREFIX}{k}")] for k, m in BUS_KINDS.items())],  # type: ignore[valid-type]
    Discriminator(
        KindTag("type", BUS_KINDS, default="async_queue"),
        custom_error_type="bus-type",
        custom_error_message="unknown bus type; expected one of: async_queue, redis",
    ),
]

#: A worker of a built-in kind.
WorkerConfig = worker_union(BUILTIN)


class RunnerSection(RunnerConfig):
    """One runner of a multi-runner topology, with its workers."""

    model_config = ConfigDict(title="RunnerSection")

    name: Name = Field(description="Runner name, unique in the topology: `runnerconf up FILE --runner NAME` starts it.")  # type: ignore[assignment]
    workers: list[WorkerConfig] = Field(default_factory=list, description="The runner's workers, started in this order.")  # type: ignore[valid-type]


@dataclass(frozen=True)
class RunnerSpec:
    """One runner to build: its options and its workers with their paths in the document."""

    config: RunnerConfig
    workers: list[tuple[tuple[str | int, ...], WorkerBase]]
    path: tuple[str | int, ...]

    @property
    def name(self) -> str | None:
        return self.config.name


class Topology(Model):
    """A runnerconf topology: its runner(s), the bus they share and their workers.

    Either `runner` + `workers` (one runner), or `runners` (several, each with its workers).
    """

    model_config = ConfigDict(title="runnerconf topology")

    version: Annotated[Literal[1], WrapValidator(scalar)] = Field(1, description="Topology format version.")
    runner: RunnerConfig = Field(default_factory=Defaults(RunnerConfig), description="Runner options. Legacy spelling: PipelineRunner.")
    bus: BusConfig = Field(default_factory=Defaults(AsyncQueueBusConfig), description="The bus workers talk over.")
    workers: list[WorkerConfig] = Field(default_factory=list, description="The workers, started in this order.")  # type: ignore[valid-type]
    runners: list[RunnerSection] | None = Field(
        None, description="Several runners sharing the bus (one per process or machine); instead of runner + workers."
    )

    # Where it was read from: filled in by the loader, used to place later errors (imports).
    _source: Any = PrivateAttr(None)
    _warnings: list[Any] = PrivateAttr(default_factory=list)
    _variables: list[Any] = PrivateAttr(default_factory=list)

    @property
    def source(self) -> Any:
        """The :class:`~runnerconf.config.source.SourceMap` of the file (None if built in code)."""
        return self._source

    @property
    def warnings(self) -> list[Any]:
        """Warnings (deprecations) found while loading, as :class:`Problem` objects."""
        return list(self._warnings)

    @property
    def variables(self) -> list[Any]:
        """Every environment variable use, as :class:`VariableUse` objects."""
        return list(self._variables)

    def runner_specs(self) -> list[RunnerSpec]:
        """The runners this topology describes, in order."""
        if self.runners is None:
            return [RunnerSpec(self.runner, [(("workers", i), w) for i, w in enumerate(self.workers)], ("runner",))]
        return [
            RunnerSpec(section, [(("runners", r, "workers", i), w) for i, w in enumerate(section.workers)], ("runners", r))
            for r, section in enumerate(self.runners)
        ]

    def all_workers(self) -> list[WorkerBase]:
        """Every worker of every runner."""
        return [w for spec in self.runner_specs() for _, w in spec.workers]

    def worker(self, name: str) -> WorkerBase | None:
        """The worker named ``name``, on any runner."""
        return next((w for w in self.all_workers() if w.name == name), None)

    def uses_kind(self, kind: str) -> bool:
        """Whether a worker of the topology is of the kind ``kind`` (``class``, ``command``, ...)."""
        return any(w.kind == kind for w in self.all_workers())


@functools.cache
def _model_for(kinds: tuple[WorkerKind, ...]) -> type[Topology]:
    union = worker_union({k.name: k for k in kinds})
    section = create_model(  # type: ignore[call-overload]
        "RunnerSection",
        __base__=RunnerSection,
        workers=(list[union], Field(default_factory=list, description="The runner's workers, started in this order.")),
    )
    return create_model(  # type: ignore[call-overload,no-any-return]
        "Topology",
        __base__=Topology,
        workers=(list[union], Field(default_factory=list, description="The workers, started in this order.")),
        runners=(list[section] | None, Field(None, description=Topology.model_fields["runners"].description)),
    )


def topology_model(kinds: dict[str, WorkerKind] | None = None) -> type[Topology]:
    """The topology model for these worker kinds (default: the built-in ones, :class:`Topology`)."""
    if kinds is None or kinds is BUILTIN or set(kinds) == set(BUILTIN):
        return Topology
    return _model_for(tuple(kinds.values()))


def tagged_models(kinds: dict[str, WorkerKind] | None = None) -> dict[str, type[BaseModel]]:
    """Models reached through a tag, for error paths and key suggestions."""
    models: dict[str, type[BaseModel]] = {
        f"{TAG_PREFIX}class": ClassWorkerConfig,
        f"{TAG_PREFIX}factory": FactoryWorkerConfig,
        f"{TAG_PREFIX}call": ProcessorCall,
        **{f"{TAG_PREFIX}{k}": v for k, v in BUS_KINDS.items()},
    }
    for name, kind in (kinds or BUILTIN).items():
        if kind.model is not None:
            models[f"{TAG_PREFIX}{name}"] = kind.model
    return models
