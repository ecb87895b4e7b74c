"""The models of workers: what every worker has, and the built-in kinds (class, factory,
pipeline, command). Kinds from packages are added by :mod:`runnerconf.config.kinds`."""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, Union

from annotated_types import Ge
from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, WithJsonSchema, WrapValidator, model_validator

from runnerconf.config import checks
from runnerconf.config.checks import TAG_PREFIX, Defaults, ProcessorTag
from runnerconf.config.types import Address, Count, CountOrZero, Duration, Flag, ImportString, Name, Params, PositiveDuration, Regex, scalar

__all__ = [
    "SIGNALS",
    "TAG_PREFIX",
    "BackoffConfig",
    "ClassWorkerConfig",
    "CommandWorkerConfig",
    "Dependency",
    "FactoryWorkerConfig",
    "HealthCheckConfig",
    "Model",
    "PipecatPipelineWorkerConfig",
    "PipelineWorkerConfig",
    "ProcessorCall",
    "WorkerBase",
]

SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGKILL")


class Model(BaseModel):
    """Base of every topology model: unknown keys refused, types checked strictly."""

    # defer_build: a model's validator is built when it is first used, once for the whole tree
    # (a command that only prints help or a schema never pays for it).
    model_config = ConfigDict(
        extra="forbid", strict=True, populate_by_name=False, validate_default=False, allow_inf_nan=False, defer_build=True
    )


def choice(*values: str) -> Any:
    """``Literal[values]`` that a ``${VAR}`` may stand for."""
    return Annotated[Literal[values], WrapValidator(scalar)]  # type: ignore[valid-type]


class Dependency(Model):
    """A worker this one waits for, and what it waits for (as Compose's depends_on conditions)."""

    model_config = ConfigDict(title="Dependency")

    name: Name = Field(description="The worker (on this runner or another) to wait for.")
    condition: choice("ready", "healthy", "completed") = Field(  # type: ignore[valid-type]
        "ready",
        description="ready: registered as ready; healthy: its health check passed (ready, for a worker without one, "
        "or on another runner); completed: it finished successfully (exit code 0 for a command).",
    )


#: The keyword arguments of a class or factory worker: all but `name`, which the worker's key sets.
WorkerParams = Annotated[
    Params,
    AfterValidator(checks.no_name),
    Field(json_schema_extra={"propertyNames": {"not": {"const": "name"}}}),
]


class WorkerBase(Model):
    """What every worker has, whatever its kind."""

    name: Name = Field(description="Worker name, unique across the topology.")
    parent: Name | None = Field(None, description="Name of the parent worker (its lifetime encloses this one's).")
    active: Flag = Field(True, description="An inactive worker is handed only activations, ends and cancels.")
    depends_on: Annotated[list[Union[Name, Dependency]], AfterValidator(functools.partial(checks.names_to, Dependency))] = Field(
        default_factory=list,
        description="Workers that must be ready (or healthy, or completed) before this one starts: names, or {name, condition}.",
        examples=[["relay", {"name": "migrate", "condition": "completed"}]],
    )
    watch: list[Name] = Field(
        default_factory=list,
        description="Workers (here or on another runner) whose readiness this one is told of (on_worker_ready).",
        examples=[["support"]],
    )
    required: Flag = Field(False, description="If this worker fails for good, the runner ends (or is cancelled, with on_failure: cancel).")
    check_dangling_tasks: Flag = Field(True, description="Warn about tasks left on the worker's own task manager when it finishes.")

    @property
    def kind(self) -> str:
        """``class``, ``factory``, or the ``type``."""
        return str(getattr(self, "type", None) or ("class" if isinstance(self, ClassWorkerConfig) else "factory"))


class ClassWorkerConfig(WorkerBase):
    """A worker built from a BaseWorker subclass, with `params` as keyword arguments."""

    model_config = ConfigDict(title="ClassWorker")

    class_: ImportString = Field(alias="class", description="A BaseWorker subclass, `module:Class`.")
    params: WorkerParams = Field(default_factory=dict)


class FactoryWorkerConfig(WorkerBase):
    """A worker returned by a function (sync or async) called with `params`."""

    model_config = ConfigDict(title="FactoryWorker")

    factory: ImportString = Field(description="A function returning a BaseWorker, `module:function`.")
    params: WorkerParams = Field(default_factory=dict)


class ProcessorCall(Model):
    """A processor that takes arguments: a class is instantiated with `params`; a function gets
    them as keyword arguments after the frame."""

    model_config = ConfigDict(title="ProcessorCall")

    call: ImportString
    params: Params = Field(default_factory=dict)


ProcessorSpec = Annotated[
    Union[
        Annotated[ImportString, Tag(f"{TAG_PREFIX}import")],
        Annotated[ProcessorCall, Tag(f"{TAG_PREFIX}call")],
    ],
    Discriminator(
        ProcessorTag(ProcessorCall),
        custom_error_type="processor",
        custom_error_message="expected a processor: an import path `module:function` or a mapping with `call`",
    ),
]


class PipelineWorkerConfig(WorkerBase):
    """A PipelineWorker: frames flow through `processors`, in order."""

    model_config = ConfigDict(title="PipelineWorker")

    type: Literal["pipeline"] = Field(description="Worker kind: frames through Python callables.")
    processors: list[ProcessorSpec] = Field(
        min_length=1,
        description="Callables, frame in, frame / list of frames / None out (sync or async).",
        examples=[["myapp.text:normalise", {"call": "myapp.bot:reply", "params": {"greeting": "hello"}}]],
    )
    send_to: Name | None = Field(None, description="Worker that receives the output frames.")
    on_error: choice("fail", "skip") = Field(  # type: ignore[valid-type]
        "fail", description="A processor that raises fails the worker (fail) or drops the frame (skip)."
    )
    max_queued: CountOrZero = Field(0, description="Bound of the input queue; 0 is unbounded.")
    frames: list[Any] = Field(default_factory=list, description="Frames queued before the worker starts.")
    stop_when_done: Flag = Field(False, description="Finish once the queued `frames` are processed.")


class PipecatPipelineWorkerConfig(WorkerBase):
    """A pipecat pipeline: pipecat FrameProcessors run by pipecat's PipelineWorker (the `pipecat` extra)."""

    model_config = ConfigDict(title="PipecatPipelineWorker")

    type: Literal["pipecat_pipeline"] = Field(description="Worker kind: a pipeline of pipecat FrameProcessors.")
    processors: list[ProcessorSpec] = Field(
        min_length=1,
        description="pipecat FrameProcessor classes, or functions returning one, by import path; `call` + `params` to pass arguments.",
        examples=[["myapp.bot:Greeter", {"call": "myapp.bot:make_tts", "params": {"voice": "en"}}]],
    )
    params: Params = Field(
        default_factory=dict,
        description="Keyword arguments of pipecat's PipelineWorker, checked against its signature by `validate --imports`: "
        "idle_timeout_secs, cancel_on_idle_timeout, cancel_runner_on_idle_timeout, cancel_timeout_secs, setup_timeout_secs, "
        "start_timeout_secs, enable_rtvi, idle_timeout_frames (import paths), params (PipelineParams: enable_metrics, "
        "audio_in_sample_rate, ...), and the others a YAML value can hold.",
        examples=[{"idle_timeout_secs": 60, "params": {"enable_metrics": True}}],
    )
    frames: list[Union[str, dict[str, Any]]] = Field(
        default_factory=list,
        description="Queued at start: a string is a TextFrame, a mapping is what the worker's converters make of it.",
    )
    stop_when_done: Flag = Field(False, description="Queue an EndFrame after `frames`: the pipeline ends once they are through.")
    send_to: Name | None = Field(None, description="Worker that receives, as bus data, what reaches the end of the pipeline.")
    on_error: choice("fail", "skip") = Field(  # type: ignore[valid-type]
        "skip",
        description="skip (pipecat's way): error frames are logged and the pipeline goes on; fail: the first one cancels the "
        "pipeline and fails the worker.",
    )
    converters: list[ImportString] = Field(
        default_factory=list,
        description="Frame converters of this worker (objects or classes with to_payload/from_payload), asked before the text converter.",
        examples=[["myapp.frames:Transcriptions"]],
    )


class BackoffConfig(Model):
    """Delays between restarts: `initial`, then multiplied by `factor` up to `max`."""

    model_config = ConfigDict(title="Backoff")

    initial: PositiveDuration = Field(1.0, description="Delay before the first restart.")
    max: Duration = Field(30.0, description="Longest delay between restarts.")
    factor: Annotated[float, Ge(1.0), WrapValidator(scalar)] = Field(2.0, description="Each delay is the previous one times this.")


class HealthCheckConfig(Model):
    """A probe of a supervised process: run a program, GET a URL, or connect to HOST:PORT."""

    # Exactly one probe, in the schema as in the model (a probe set to null is no probe).
    model_config = ConfigDict(
        title="HealthCheck",
        json_schema_extra={
            "oneOf": [
                {"required": [probe], "properties": {probe: {"not": {"type": "null"}}}} for probe in ("exec", "http", "tcp")
            ]
        },
    )

    exec: list[str] | None = Field(None, min_length=1, description="A program (argv) that exits 0 when healthy.", examples=[["pg_isready"]])
    http: str | None = Field(
        None, pattern=r"^https?://", description="A URL that answers 2xx or 3xx when healthy.", examples=["http://127.0.0.1:7860/health"]
    )
    tcp: Address | None = Field(None, description="HOST:PORT that accepts a connection when healthy.")
    interval: PositiveDuration = Field(10.0, description="Time between probes.")
    timeout: PositiveDuration = Field(1.0, description="Time one probe may take.")
    retries: Count = Field(3, description="Failures in a row that make the process unhealthy (then restarted per `restart`).")
    start_period: Duration = Field(0.0, description="Failures in this time after a start do not count.")

    _one_probe = model_validator(mode="after")(checks.one_probe)


class CommandWorkerConfig(WorkerBase):
    """A supervised process: started in a session of its own, stopped with a signal, restarted by policy."""

    model_config = ConfigDict(title="CommandWorker")

    type: Literal["command"] = Field(description="Worker kind: a supervised process.")
    command: Annotated[
        Union[str, list[str]],
        WrapValidator(checks.command),
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
    inherit_env: Flag = Field(True, description="Start from runnerconf's own environment.")
    stop_signal: choice(*SIGNALS) = Field("SIGTERM", description="Signal sent to the process on a graceful stop.")  # type: ignore[valid-type]
    stop_timeout: Duration = Field(10.0, description="Time the whole process tree gets after stop_signal, then SIGKILL.")
    restart: choice("no", "on-failure", "always") = Field(  # type: ignore[valid-type]
        "no", description="Restart policy: no, on-failure (non-zero exit, or unhealthy) or always."
    )
    max_restarts: CountOrZero | None = Field(None, description="Restarts allowed over the worker's life; unset: no limit.")
    backoff: BackoffConfig = Field(default_factory=Defaults(BackoffConfig), description="Delays between restarts.")
    ready_line: Regex | None = Field(
        None,
        description="Regular expression: the worker is ready once an output line matches (default: once started).",
        examples=["listening on"],
    )
    ready_timeout: Duration | None = Field(None, description="Fail if not ready this long after the first start.")
    healthcheck: HealthCheckConfig | None = Field(
        None, description="Probe the process; ready once healthy (unless ready_line says otherwise); restarted when unhealthy."
    )
