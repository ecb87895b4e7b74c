"""The topology models: the single definition of every option of a topology file.

The loader validates documents with them, the JSON Schema is generated from them, and the CLI's
``--set`` overrides are checked by them. Every model forbids unknown keys.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    model_validator,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "AsyncQueueBusConfig",
    "BackoffConfig",
    "BusConfig",
    "ClassWorkerConfig",
    "CommandWorkerConfig",
    "FactoryWorkerConfig",
    "PipelineWorkerConfig",
    "ProcessorCall",
    "RedisBusConfig",
    "RunnerConfig",
    "RunnerSection",
    "RunnerSpec",
    "Topology",
    "WorkerConfig",
    "parse_duration",
]

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_#@-]{0,127}$"
IMPORT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
#: Tags of tagged unions start with this; they are dropped from error paths.
TAG_PREFIX = "kind="

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> Any:
    """``500ms``, ``10s``, ``2m``, ``1h`` or a number of seconds -> seconds (float)."""
    if isinstance(value, bool):
        raise PydanticCustomError("duration", "expected a duration such as 500ms, 10s or 2m, got {value}", {"value": repr(value)})
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise PydanticCustomError("duration", "expected a finite duration such as 500ms, 10s or 2m, got {value}", {"value": repr(value)})
        if value < 0:
            raise PydanticCustomError("duration", "a duration cannot be negative, got {value}", {"value": repr(value)})
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise PydanticCustomError(
        "duration", "expected a duration such as 500ms, 10s, 2m or a number of seconds, got {value}", {"value": repr(value)}
    )


_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$"},
    ],
    "examples": ["500ms", "10s", "2m", 30],
}

Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]
Name = Annotated[str, Field(pattern=NAME_PATTERN, examples=["greeter"])]
ADDRESS_PATTERN = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]*):[0-9]{1,5}$"
#: ``HOST:PORT`` (``[::1]:9100`` for IPv6; an empty host listens everywhere).
Address = Annotated[str, Field(pattern=ADDRESS_PATTERN, examples=["127.0.0.1:9100"])]
ImportString = Annotated[
    str,
    Field(
        pattern=IMPORT_PATTERN,
        description="Import path `module:attribute` (the attribute may be dotted).",
        examples=["myapp.workers:Printer"],
    ),
]
Params = Annotated[
    dict[str, Any],
    Field(description="Keyword arguments passed to the class, factory or processor."),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False, validate_default=False, allow_inf_nan=False)


class RunnerConfig(_Model):
    """Options of the WorkerRunner."""

    model_config = ConfigDict(title="Runner")

    name: Name | None = Field(None, description="Runner name (unique among runners on a network bus). Default: runner-<8 hex>.")
    handle_sigint: bool = Field(True, description="Stop on SIGINT (first: graceful, second: cancel).")
    handle_sigterm: bool = Field(
        True,
        description="Stop on SIGTERM (first: graceful, second: cancel): what docker stop, systemctl stop and Kubernetes send. "
        "True for topologies (the library's WorkerRunner keeps pipecat's default, false).",
    )
    on_signal: Literal["end", "cancel"] = Field(
        "end", description="What the first signal does: a graceful end, or an immediate cancel."
    )
    force_gc: bool = Field(False, description="Run a full garbage collection after the workers are gone.")
    auto_end: bool = Field(True, description="End the runner once every root worker has finished.")
    on_failure: Literal["continue", "end", "cancel"] = Field(
        "continue",
        description="When a worker fails for good (after its restarts): the others go on (continue), or the runner ends or is cancelled.",
    )
    check_dangling_tasks: bool = Field(True, description="Warn about tasks left on the runner's task manager at the end.")
    stop_timeout: Duration = Field(10.0, description="Grace period of a graceful stop before workers are cancelled.")
    cancel_timeout: Duration = Field(5.0, description="How long a cancelled worker gets before it is abandoned.")
    http: Address | None = Field(
        None,
        description="Serve /healthz, /readyz and /metrics on HOST:PORT while the runner runs (the `http` extra for /metrics).",
        examples=["127.0.0.1:9100", "0.0.0.0:8080"],
    )


class AsyncQueueBusConfig(_Model):
    """The in-process bus (the default)."""

    model_config = ConfigDict(title="AsyncQueueBus")

    type: Literal["async_queue"] = Field("async_queue", description="Bus kind.")


class ReconnectConfig(_Model):
    """Backoff between reconnection attempts."""

    model_config = ConfigDict(title="Reconnect")

    initial: Duration = Field(0.1, description="Delay before the first attempt.")
    max: Duration = Field(5.0, description="Longest delay between attempts.")


class RedisBusConfig(_Model):
    """A bus on Redis pub/sub, for runners on several processes or machines (the `redis` extra)."""

    model_config = ConfigDict(title="RedisBus")

    type: Literal["redis"] = Field(description="Bus kind.")
    url: str = Field(
        "redis://127.0.0.1:6379/0",
        pattern=r"^(redis|rediss|unix)://",
        description="Server URL: redis://[:password@]host:port/db, rediss:// or unix://.",
        examples=["${REDIS_URL:-redis://127.0.0.1:6379/0}"],
    )
    channel: str = Field(
        "runnerconf", pattern=r"^[A-Za-z0-9_.:-]{1,128}$", description="Pub/sub channel every runner of the topology shares."
    )
    connect_timeout: Duration = Field(5.0, description="Time to reach the server at start before giving up (exit code 3).")
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig, description="Backoff after a lost connection.")  # type: ignore[arg-type]
    max_batch: int = Field(512, ge=1, description="Most messages per PUBLISH.")
    max_buffer: int = Field(100_000, ge=1, description="Most messages kept while disconnected (oldest dropped beyond).")


def _bus_kind(value: Any) -> str | None:
    kind = value.get("type", "async_queue") if isinstance(value, dict) else getattr(value, "type", None)
    return f"{TAG_PREFIX}{kind}" if kind in BUS_KINDS else None


BUS_KINDS: dict[str, type[_Model]] = {"async_queue": AsyncQueueBusConfig, "redis": RedisBusConfig}

BusConfig = Annotated[
    Union[
        Annotated[AsyncQueueBusConfig, Tag(f"{TAG_PREFIX}async_queue")],
        Annotated[RedisBusConfig, Tag(f"{TAG_PREFIX}redis")],
    ],
    Discriminator(
        _bus_kind,
        custom_error_type="bus-type",
        custom_error_message="unknown bus type; expected one of: async_queue, redis",
    ),
]


class Dependency(_Model):
    """A worker this one waits for, and what it waits for (as Compose's depends_on conditions)."""

    model_config = ConfigDict(title="Dependency")

    name: Name = Field(description="The worker (on this runner or another) to wait for.")
    condition: Literal["ready", "healthy", "completed"] = Field(
        "ready",
        description="ready: registered as ready; healthy: its health check passed (ready, for a worker without one, "
        "or on another runner); completed: it finished successfully (exit code 0 for a command).",
    )


def _dependencies(value: list[Any]) -> list[Dependency]:
    # A bare name is the same as {name: NAME, condition: ready}.
    return [Dependency(name=v) if isinstance(v, str) else v for v in value]


class _WorkerBase(_Model):
    name: Name = Field(description="Worker name, unique across the topology.")
    parent: Name | None = Field(None, description="Name of the parent worker (its lifetime encloses this one's).")
    active: bool = Field(True, description="An inactive worker is not handed data messages.")
    depends_on: Annotated[list[Union[Name, Dependency]], AfterValidator(_dependencies)] = Field(
        default_factory=list,
        description="Workers that must be ready (or healthy, or completed) before this one starts: names, or {name, condition}.",
        examples=[["relay", {"name": "migrate", "condition": "completed"}]],
    )
    watch: list[Name] = Field(
        default_factory=list,
        description="Workers (here or on another runner) whose readiness this one is told of (on_worker_ready).",
        examples=[["support"]],
    )
    required: bool = Field(False, description="If this worker fails for good, the runner ends (or is cancelled, with on_failure: cancel).")
    check_dangling_tasks: bool = Field(True, description="Warn about tasks left on the worker's own task manager when it finishes.")


class ClassWorkerConfig(_WorkerBase):
    """A worker built from a BaseWorker subclass, with `params` as keyword arguments."""

    model_config = ConfigDict(title="ClassWorker")

    class_: ImportString = Field(alias="class", description="A BaseWorker subclass, `module:Class`.")
    params: Params = Field(default_factory=dict)


class FactoryWorkerConfig(_WorkerBase):
    """A worker returned by a function (sync or async) called with `params`."""

    model_config = ConfigDict(title="FactoryWorker")

    factory: ImportString = Field(description="A function returning a BaseWorker, `module:function`.")
    params: Params = Field(default_factory=dict)


class ProcessorCall(_Model):
    """A processor that takes arguments: a class is instantiated with `params`; a function gets
    them as keyword arguments after the frame."""

    model_config = ConfigDict(title="ProcessorCall")

    call: ImportString
    params: Params = Field(default_factory=dict)


def _processor_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return f"{TAG_PREFIX}import"
    if isinstance(value, (dict, ProcessorCall)):
        return f"{TAG_PREFIX}call"
    return None


ProcessorSpec = Annotated[
    Union[
        Annotated[ImportString, Tag(f"{TAG_PREFIX}import")],
        Annotated[ProcessorCall, Tag(f"{TAG_PREFIX}call")],
    ],
    Discriminator(
        _processor_kind,
        custom_error_type="processor",
        custom_error_message="expected a processor: an import path `module:function` or a mapping with `call`",
    ),
]


class PipelineWorkerConfig(_WorkerBase):
    """A PipelineWorker: frames flow through `processors`, in order."""

    model_config = ConfigDict(title="PipelineWorker")

    type: Literal["pipeline"] = Field(description="Built-in worker kind.")
    processors: list[ProcessorSpec] = Field(
        min_length=1,
        description="Callables, frame in, frame / list of frames / None out (sync or async).",
        examples=[["myapp.text:normalise", {"call": "myapp.bot:reply", "params": {"greeting": "hello"}}]],
    )
    send_to: Name | None = Field(None, description="Worker that receives the output frames.")
    on_error: Literal["fail", "skip"] = Field(
        "fail", description="A processor that raises fails the worker (fail) or drops the frame (skip)."
    )
    max_queued: int = Field(0, ge=0, description="Bound of the input queue; 0 is unbounded.")
    frames: list[Any] = Field(default_factory=list, description="Frames queued before the worker starts.")
    stop_when_done: bool = Field(False, description="Finish once the queued `frames` are processed.")


SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGKILL")


def _restart_policy(value: Any) -> Any:
    # YAML 1.1 reads an unquoted `no` as false: take it as the policy it was meant to be.
    return "no" if value is False else value


def _regex(value: Any) -> Any:
    if isinstance(value, str):
        try:
            re.compile(value)
        except re.error as exc:
            raise PydanticCustomError(
                "regex", "invalid regular expression {value}: {error}", {"value": repr(value), "error": str(exc)}
            ) from exc
    return value


def _command(value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in value):
        return [str(a) for a in value]
    raise PydanticCustomError(
        "command", "expected a command: a non-empty string (run by /bin/sh) or a list of strings (argv); got {value}", {"value": repr(value)}
    )


class BackoffConfig(_Model):
    """Delays between restarts: `initial`, then multiplied by `factor` up to `max`."""

    model_config = ConfigDict(title="Backoff")

    initial: Duration = Field(1.0, description="Delay before the first restart.")
    max: Duration = Field(30.0, description="Longest delay between restarts.")
    factor: float = Field(2.0, ge=1.0, description="Each delay is the previous one times this.")


class HealthCheckConfig(_Model):
    """A probe of a supervised process: run a program, GET a URL, or connect to HOST:PORT."""

    model_config = ConfigDict(title="HealthCheck")

    exec: list[str] | None = Field(None, min_length=1, description="A program (argv) that exits 0 when healthy.", examples=[["pg_isready"]])
    http: str | None = Field(
        None, pattern=r"^https?://", description="A URL that answers 2xx or 3xx when healthy.", examples=["http://127.0.0.1:7860/health"]
    )
    tcp: Address | None = Field(None, description="HOST:PORT that accepts a connection when healthy.")
    interval: Duration = Field(10.0, description="Time between probes.")
    timeout: Duration = Field(1.0, description="Time one probe may take.")
    retries: int = Field(3, ge=1, description="Failures in a row that make the process unhealthy (then restarted per `restart`).")
    start_period: Duration = Field(0.0, description="Failures in this time after a start do not count.")

    @model_validator(mode="after")
    def _one_probe(self) -> HealthCheckConfig:
        if sum(x is not None for x in (self.exec, self.http, self.tcp)) != 1:
            raise PydanticCustomError("healthcheck", "a health check needs exactly one of exec, http and tcp")
        if self.interval <= 0 or self.timeout <= 0:
            raise PydanticCustomError("healthcheck", "interval and timeout must be more than 0")
        return self


class CommandWorkerConfig(_WorkerBase):
    """A supervised process: started in its own process group, stopped with a signal, restarted by policy."""

    model_config = ConfigDict(title="CommandWorker")

    type: Literal["command"] = Field(description="Built-in worker kind.")
    command: Annotated[
        Union[str, list[str]],
        BeforeValidator(_command),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "minLength": 1},
                    {"type": "array", "items": {"type": ["string", "number"]}, "minItems": 1},
                ]
            }
        ),
    ] = Field(
        description="An argv list (run directly) or a string (run through /bin/sh -c).",
        examples=[["python3", "-m", "myapp.bot", "--port", "${PORT:-7860}"]],
    )
    cwd: str | None = Field(None, description="Working directory, relative to the topology file.")
    env: dict[str, Union[str, int, float, bool]] = Field(default_factory=dict, description="Extra environment variables.")
    inherit_env: bool = Field(True, description="Start from runnerconf's own environment.")
    stop_signal: Literal[SIGNALS] = Field("SIGTERM", description="Signal sent to the process group on a graceful stop.")  # type: ignore[valid-type]
    stop_timeout: Duration = Field(10.0, description="Time between stop_signal and SIGKILL.")
    restart: Annotated[
        Literal["no", "on-failure", "always"],
        BeforeValidator(_restart_policy),
        WithJsonSchema({"anyOf": [{"enum": ["no", "on-failure", "always"]}, {"const": False}]}),
    ] = Field("no", description="Restart policy: no, on-failure (non-zero exit) or always.")
    max_restarts: int | None = Field(None, ge=0, description="Restarts allowed over the worker's life; unset: no limit.")
    backoff: BackoffConfig = Field(default_factory=BackoffConfig, description="Delays between restarts.")  # type: ignore[arg-type]
    ready_line: Annotated[str, BeforeValidator(_regex)] | None = Field(
        None,
        description="Regular expression: the worker is ready once an output line matches (default: once started).",
        examples=["listening on"],
    )
    ready_timeout: Duration | None = Field(None, description="Fail if not ready this long after the first start.")
    healthcheck: HealthCheckConfig | None = Field(
        None, description="Probe the process; ready once healthy (unless ready_line says otherwise); restarted when unhealthy."
    )


#: Built-in worker kinds by their `type`.
WORKER_TYPES: dict[str, type[_WorkerBase]] = {"pipeline": PipelineWorkerConfig, "command": CommandWorkerConfig}
#: Keys that choose a worker's kind; a worker has exactly one.
WORKER_KIND_KEYS = ("class", "factory", "type")


def _worker_kind(value: Any) -> str | None:
    if not isinstance(value, dict):
        if isinstance(value, ClassWorkerConfig):
            return f"{TAG_PREFIX}class"
        if isinstance(value, FactoryWorkerConfig):
            return f"{TAG_PREFIX}factory"
        kind = getattr(value, "type", None)
        return f"{TAG_PREFIX}{kind}" if kind in WORKER_TYPES else None
    present = [k for k in WORKER_KIND_KEYS if k in value]
    if len(present) != 1:
        return None
    if present[0] == "type":
        return f"{TAG_PREFIX}{value['type']}" if value["type"] in WORKER_TYPES else None
    return f"{TAG_PREFIX}{present[0]}"


WorkerConfig = Annotated[
    Union[
        Annotated[ClassWorkerConfig, Tag(f"{TAG_PREFIX}class")],
        Annotated[FactoryWorkerConfig, Tag(f"{TAG_PREFIX}factory")],
        Annotated[PipelineWorkerConfig, Tag(f"{TAG_PREFIX}pipeline")],
        Annotated[CommandWorkerConfig, Tag(f"{TAG_PREFIX}command")],
    ],
    Discriminator(
        _worker_kind,
        custom_error_type="worker-kind",
        custom_error_message="a worker needs exactly one of `class`, `factory` or a built-in `type`",
    ),
]


class RunnerSection(RunnerConfig):
    """One runner of a multi-runner topology, with its workers."""

    model_config = ConfigDict(title="RunnerSection")

    name: Name = Field(description="Runner name, unique in the topology: `runnerconf up FILE --runner NAME` starts it.")  # type: ignore[assignment]
    workers: list[WorkerConfig] = Field(default_factory=list, description="The runner's workers, started in this order.")


@dataclass(frozen=True)
class RunnerSpec:
    """One runner to build: its options and its workers with their paths in the document."""

    config: RunnerConfig
    workers: list[tuple[tuple[str | int, ...], WorkerConfig]]
    path: tuple[str | int, ...]

    @property
    def name(self) -> str | None:
        return self.config.name


class Topology(_Model):
    """A runnerconf topology: its runner(s), the bus they share and their workers.

    Either `runner` + `workers` (one runner), or `runners` (several, each with its workers).
    """

    model_config = ConfigDict(title="runnerconf topology")

    version: Literal[1] = Field(1, description="Topology format version.")
    runner: RunnerConfig = Field(default_factory=RunnerConfig, description="Runner options. Legacy spelling: PipelineRunner.")  # type: ignore[arg-type]
    bus: BusConfig = Field(default_factory=AsyncQueueBusConfig, description="The bus workers talk over.")  # type: ignore[arg-type]
    workers: list[WorkerConfig] = Field(default_factory=list, description="The workers, started in this order.")
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

    def all_workers(self) -> list[WorkerConfig]:
        """Every worker of every runner."""
        return [w for spec in self.runner_specs() for _, w in spec.workers]

    def worker(self, name: str) -> WorkerConfig | None:
        """The worker named ``name``, on any runner."""
        return next((w for w in self.all_workers() if w.name == name), None)


#: Models reached through a tag, for error paths and key suggestions.
TAGGED_MODELS: dict[str, type[BaseModel]] = {
    f"{TAG_PREFIX}class": ClassWorkerConfig,
    f"{TAG_PREFIX}factory": FactoryWorkerConfig,
    f"{TAG_PREFIX}call": ProcessorCall,
    **{f"{TAG_PREFIX}{k}": v for k, v in WORKER_TYPES.items()},
    **{f"{TAG_PREFIX}{k}": v for k, v in BUS_KINDS.items()},
}
