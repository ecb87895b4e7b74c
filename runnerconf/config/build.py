"""From a validated topology to a ``WorkerRunner`` with its workers.

Two explicit steps: :func:`resolve` imports every class, factory and processor the topology names
and checks ``params`` against their signatures (without building anything); :func:`build_runner`
then builds the bus, the runner and the workers, and wires parents to children. Each failure names
the worker, the import path and the line.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import os
import shutil
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

from pydantic import TypeAdapter, ValidationError

from runnerconf.bus.bus import WorkerBus
from runnerconf.bus.local import AsyncQueueBus
from runnerconf.config.errors import Problem, TopologyError
from runnerconf.config.kinds import installed_kinds, params_model
from runnerconf.config.messages import translate_validation_error
from runnerconf.config.interpolate import Placeholder
from runnerconf.config.modules import allow_topology_modules
from runnerconf.config.selection import select_runners
from runnerconf.config.models import (
    AsyncQueueBusConfig,
    RedisBusConfig,
    RunnerConfig,
    RunnerSpec,
    ClassWorkerConfig,
    CommandWorkerConfig,
    FactoryWorkerConfig,
    HealthCheckConfig,
    PipecatPipelineWorkerConfig,
    PipelineWorkerConfig,
    ProcessorCall,
    Topology,
    WorkerConfig,
)
from runnerconf.config.source import Path, SourceMap
from runnerconf.pipeline.worker import PipelineWorker
from runnerconf.workers.base_worker import BaseWorker
from runnerconf.workers.command import CommandWorker
from runnerconf.workers.health import HealthCheck
from runnerconf.workers.group import RunnerGroup
from runnerconf.workers.runner import WorkerRunner

__all__ = [
    "Plan",
    "ResolvedWorker",
    "RunnerPlan",
    "build_bus",
    "build_runner",
    "build_runners",
    "build_topology",
    "Launch",
    "import_string",
    "resolve",
    "run_topology",
    "select_runners",
]


class ImportStringError(Exception):
    """An import path that cannot be resolved; the message says why."""


def import_string(path: str) -> Any:
    """Import ``module:attribute`` (the attribute may be dotted).

    Whatever the user's module raises while it is imported or looked into -- an exception, but
    also ``SystemExit`` or ``KeyboardInterrupt`` -- is an :class:`ImportStringError` saying so.
    """
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ImportStringError(f"import path {path!r} must be in format '<module>:<attribute>'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ImportStringError(f"cannot import module {module_name!r}: no module named {exc.name!r}") from exc
        raise ImportStringError(f"importing module {module_name!r} failed: {exc}") from exc
    except BaseException as exc:  # the user's module raised (or exited) while being imported
        raise ImportStringError(f"importing module {module_name!r} raised {_raised(exc)}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ImportStringError(f"module {module_name!r} has no attribute {attr!r}") from exc
        except BaseException as exc:  # a module __getattr__ (or a property) that raises
            raise ImportStringError(f"looking up {attr!r} in module {module_name!r} raised {_raised(exc)}") from exc
    return obj


def _raised(exc: BaseException) -> str:
    """``SystemExit(3)``, ``ValueError: no config``."""
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r})"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class ResolvedWorker:
    """A worker's configuration with everything it names imported."""

    config: WorkerConfig
    path: Path
    target: Any = None
    processors: list[Callable[[Any], Any]] = field(default_factory=list)
    converters: list[Any] = field(default_factory=list)


@dataclass
class RunnerPlan:
    """One runner to build, with its resolved workers."""

    spec: RunnerSpec
    workers: list[ResolvedWorker]

    @property
    def config(self) -> RunnerConfig:
        return self.spec.config


@dataclass
class Plan:
    """What :func:`build_runner` builds: the topology and its resolved runner(s)."""

    topology: Topology
    runners: list[RunnerPlan]

    @property
    def workers(self) -> list[ResolvedWorker]:
        """Every resolved worker, runner after runner."""
        return [w for r in self.runners for w in r.workers]


def resolve(topology: Topology, runner: str | None = None, workers: Sequence[str] = ()) -> Plan:
    """Import everything the topology (or its runner named ``runner``) names; check ``params``.

    With ``workers``, only those are planned, with what they need (see
    :func:`~runnerconf.config.selection.worker_closure`).

    Only the chosen runner's workers are imported: a machine that starts one runner needs only
    that runner's code. Modules kept beside the topology file (or in the current directory)
    import as from a script there, without shadowing anything (see :mod:`runnerconf.config.modules`).

    Raises:
        TopologyError: every import or signature problem, with the worker and line.
        ValueError: no runner of that name.
    """
    source: SourceMap = topology.source or SourceMap("<memory>")
    specs = select_runners(topology, runner, workers)
    allow_topology_modules(source.file, _named_modules(specs))
    problems: list[Problem] = _check_bus(topology, source)
    runners = []
    for spec in specs:
        resolved = []
        for path, config in spec.workers:
            rw = ResolvedWorker(config, path)
            if isinstance(config, CommandWorkerConfig):
                problems.extend(_resolve_command(rw, config, source))
            else:
                problems.extend(_resolve_worker(rw, source))
            resolved.append(rw)
        runners.append(RunnerPlan(spec, resolved))
    if problems:
        raise TopologyError(problems)
    return Plan(topology, runners)


def _resolve_command(rw: ResolvedWorker, config: CommandWorkerConfig, source: SourceMap) -> list[Problem]:
    """Check that the program exists and is executable, and that ``cwd`` is a directory."""
    who = f"worker {config.name!r}"
    root = FilePath(base_dir_of(source))
    unknown = [k for k, v in (("cwd", config.cwd), ("command", config.command if isinstance(config.command, str) else config.command[0])) if isinstance(v, Placeholder)]
    if unknown:
        return [_not_checked(source, (*rw.path, unknown[0]), who, "the program and working directory")]
    cwd = root / config.cwd if config.cwd is not None else root
    if not cwd.is_dir():
        return [source.problem((*rw.path, "cwd"), "bad-cwd", f"{who}: working directory {str(cwd)!r} does not exist")]
    rw.target = str(cwd)
    if isinstance(config.command, str):
        return []  # a shell command line: the shell finds the program
    program = config.command[0]
    env_path = config.env.get("PATH") if "PATH" in config.env else (os.environ.get("PATH") if config.inherit_env else None)
    if os.sep in program:
        path = FilePath(program) if os.path.isabs(program) else cwd / program
        found = str(path) if path.is_file() and os.access(path, os.X_OK) else None
        reason = "is not executable" if path.is_file() else "does not exist"
    else:
        found = shutil.which(program, path=str(env_path) if env_path is not None else os.defpath)
        reason = "is not found on PATH"
    if found is None:
        return [source.problem((*rw.path, "command", 0), "command-not-found", f"{who}: program {program!r} {reason}")]
    return []


def base_dir_of(source: SourceMap) -> str:
    """The directory relative paths of a topology are relative to: its file's, or the cwd."""
    if source.file.startswith("<"):
        return os.getcwd()
    return str(FilePath(source.file).resolve().parent)


def _check_bus(topology: Topology, source: SourceMap) -> list[Problem]:
    """A bus whose optional package is missing, or whose secret file cannot be used, is a
    start-up problem."""
    if isinstance(topology.bus, RedisBusConfig):
        try:
            importlib.import_module("redis.asyncio")
        except ImportError:
            from runnerconf.bus.network.redis import INSTALL_HINT

            return [source.problem(("bus", "type"), "missing-extra", INSTALL_HINT)]
        if topology.bus.secret_file is not None and not isinstance(topology.bus.secret_file, Placeholder):
            try:
                bus_secrets(topology)
            except ValueError as exc:
                return [source.problem(("bus", "secret_file"), "bad-secret-file", str(exc))]
    return []


def _named_modules(specs: list[RunnerSpec]) -> set[str]:
    """The top-level modules the workers of ``specs`` name (their import paths)."""
    paths: list[str] = []
    for spec in specs:
        for _, config in spec.workers:
            if isinstance(config, ClassWorkerConfig):
                paths.append(config.class_)
            elif isinstance(config, FactoryWorkerConfig):
                paths.append(config.factory)
            elif isinstance(config, (PipelineWorkerConfig, PipecatPipelineWorkerConfig)):
                paths += [p if isinstance(p, str) else p.call for p in config.processors]
                paths += getattr(config, "converters", [])
    return {p.partition(":")[0].split(".")[0] for p in paths}


def _resolve_worker(rw: ResolvedWorker, source: SourceMap) -> list[Problem]:
    config = rw.config
    who = f"worker {config.name!r}"

    def problem(key: tuple[str | int, ...], message: str, code: str = "import") -> Problem:
        return source.problem((*rw.path, *key), code, f"{who}: {message}")

    if isinstance(config, (ClassWorkerConfig, FactoryWorkerConfig)):
        key = "class" if isinstance(config, ClassWorkerConfig) else "factory"
        path = config.class_ if isinstance(config, ClassWorkerConfig) else config.factory
        if isinstance(path, Placeholder):
            return [_not_checked(source, (*rw.path, key), who, "its import path and params")]
        try:
            target = import_string(path)
        except ImportStringError as exc:
            return [problem((key,), str(exc))]
        if isinstance(config, ClassWorkerConfig):
            try:
                is_worker = isinstance(target, type) and issubclass(target, BaseWorker)
            except Exception:  # a metaclass whose subclass check raises
                is_worker = False
            if not is_worker:
                return [problem((key,), f"{path!r} is not a BaseWorker subclass (it is {_describe(target)})", "not-a-worker")]
        elif not callable(target):
            return [problem((key,), f"{path!r} is not callable (it is {_describe(target)})", "not-callable")]
        error = _params_error(target, config.params, with_name=_accepts(target, "name"))
        if error:
            return [problem(("params",), f"params do not fit {path}: {error}", "bad-params")]
        if isinstance(config, ClassWorkerConfig) and _takes_kwargs(target):
            # `**kwargs` binds anything: check against the class's Params model or the
            # TypedDict of `**kwargs: Unpack[...]`, where it has one, so a misspelt param is caught.
            described = params_model(target)
            if described is not None:
                try:
                    TypeAdapter(described).validate_python(config.params)
                except ValidationError as exc:
                    return translate_validation_error(exc, source, root=described, prefix=(*rw.path, "params"))
        rw.target = target
        return []
    if isinstance(config, PipelineWorkerConfig):
        problems = []
        for j, spec in enumerate(config.processors):
            if isinstance(spec if isinstance(spec, str) else spec.call, Placeholder):
                problems.append(_not_checked(source, (*rw.path, "processors", j), who, "this processor"))
                continue
            try:
                rw.processors.append(_resolve_processor(spec))
            except ImportStringError as exc:
                problems.append(problem(("processors", j), str(exc)))
            except TypeError as exc:
                problems.append(problem(("processors", j), str(exc), "bad-params"))
        return problems
    if isinstance(config, PipecatPipelineWorkerConfig):
        from runnerconf.config.pipecat import resolve_pipecat_pipeline  # needs pipecat: imported on use

        return resolve_pipecat_pipeline(rw, source)
    kind = installed_kinds().get(getattr(config, "type", ""))
    if kind is None or kind.target is None:  # pragma: no cover - every model has a kind
        raise AssertionError(f"unhandled worker kind {type(config).__name__}")
    rw.target = kind.target  # a kind from a package: loaded (and its params checked) already
    return []


def _not_checked(source: SourceMap, path: Path, who: str, what: str) -> Problem:
    """A warning: under --no-interpolate a `${VAR}` hides what --imports would check."""
    return source.problem(path, "not-checked", f"{who}: {what} not checked: the value holds a variable (--no-interpolate)", severity="warning")


def _resolve_processor(spec: str | ProcessorCall) -> Callable[[Any], Any]:
    path, params = (spec, {}) if isinstance(spec, str) else (spec.call, spec.params)
    target = import_string(path)
    if isinstance(target, type):
        # A class is a processor factory: its instance (built with params) processes frames.
        error = _params_error(target, params)
        if error:
            raise TypeError(f"params do not fit {path}: {error}")
        return _LazyInstance(target, params, path)
    if not callable(target):
        raise TypeError(f"processor {path!r} is not callable (it is {_describe(target)})")
    error = _params_error(target, params, frame=True)
    if error:
        raise TypeError(f"processor {path} cannot be called as {path}(frame{', **params' if params else ''}): {error}")
    return functools.partial(target, **params) if params else target


class _LazyInstance:
    """A processor class with its params, instantiated when the worker is built."""

    def __init__(self, cls: type, params: dict[str, Any], path: str) -> None:
        self.cls, self.params, self.path = cls, params, path

    def build(self) -> Callable[[Any], Any]:
        instance = self.cls(**self.params)
        if not callable(instance):
            raise TypeError(f"processor {self.path}: instances of {self.cls.__name__} are not callable")
        return instance

    def __call__(self, frame: Any) -> Any:  # pragma: no cover - replaced by build()
        raise RuntimeError("processor class used before the worker was built")


def _signature(target: Any) -> inspect.Signature | None:
    """``inspect.signature(target)``, once per target (10,000 workers of one class ask 10,000
    times); None for builtins that have none."""
    try:
        return _SIGNATURES[target]
    except KeyError:
        pass
    except TypeError:  # unhashable: not cached
        return _signature_of(target)
    sig = _SIGNATURES[target] = _signature_of(target)
    return sig


def _signature_of(target: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(target)
    except (TypeError, ValueError):
        return None


_SIGNATURES: dict[Any, inspect.Signature | None] = {}
#: Whether params with these names bind (the answer depends on the names only).
_BINDS: dict[tuple[Any, tuple[str, ...], bool, bool], str | None] = {}


def _params_error(target: Any, params: dict[str, Any], *, with_name: bool = False, frame: bool = False) -> str | None:
    try:
        key = (target, tuple(params), with_name, frame)
        return _BINDS[key]
    except KeyError:
        pass
    except TypeError:
        key = None  # type: ignore[assignment]
    error = _bind_error(target, params, with_name, frame)
    if key is not None and len(_BINDS) < 100_000:
        _BINDS[key] = error
    return error


def _bind_error(target: Any, params: dict[str, Any], with_name: bool, frame: bool) -> str | None:
    sig = _signature(target)
    if sig is None:
        return None  # builtins without a signature: nothing to check
    args = ("frame",) if frame else ()
    kwargs = {**params, **({"name": "x"} if with_name else {})}
    try:
        sig.bind(*args, **kwargs)
    except TypeError as exc:
        return f"{exc} (signature: {getattr(target, '__name__', target)}{_shown(target, sig)})"
    return None


def _shown(target: Any, sig: inspect.Signature) -> inspect.Signature:
    """A signature as written in the code: annotations evaluated where they can be (a module
    with ``from __future__ import annotations`` has them as strings), no return annotation."""
    try:
        sig = inspect.signature(target, eval_str=True)
    except Exception:  # a name only the type checker knows
        pass
    return sig.replace(return_annotation=inspect.Signature.empty)


def _takes_kwargs(target: Any) -> bool:
    sig = _signature(target)
    return sig is not None and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())


def _accepts(target: Any, param: str) -> bool:
    sig = _signature(target)
    if sig is None:
        return False
    return param in sig.parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())


def _describe(obj: Any) -> str:
    if inspect.isfunction(obj):
        return "a function"
    if isinstance(obj, type):
        return f"the class {obj.__name__}"
    name = type(obj).__name__
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


# -- building ----------------------------------------------------------------------------------


def build_bus(topology: Topology, *, group: str | None = None) -> WorkerBus:
    """The bus a topology asks for (RedisBus needs the ``redis`` extra).

    Args:
        group: With ``delivery: stream``, the consumer group: the name of the runner (or runners)
            of this process, to resume from; None for a short-lived bus (``runnerconf down``).

    Raises:
        ImportError: the redis extra is missing.
        ValueError: the secret file cannot be read or holds no usable secret.
    """
    config = topology.bus
    if isinstance(config, AsyncQueueBusConfig):
        return AsyncQueueBus(max_queued=config.max_queued)
    if isinstance(config, RedisBusConfig):
        from runnerconf.bus.network.redis import RedisBus
        from runnerconf.bus.serializers import JSONMessageSerializer, MessageSerializer

        serializer: MessageSerializer = JSONMessageSerializer(max_frame_bytes=config.max_frame_bytes)
        if config.wire == "pipecat":
            from runnerconf.bus.serializers.pipecat import PipecatMessageSerializer

            serializer = PipecatMessageSerializer(max_frame_bytes=config.max_frame_bytes, data_types=config.data_types)
        if config.signed:
            from runnerconf.bus.serializers.signed import SignedSerializer
            from runnerconf.bus.signing import FrameSigner

            serializer = SignedSerializer(serializer, FrameSigner(bus_secrets(topology), max_age=config.max_age))
        return RedisBus(
            config.url,
            channel=config.channel_name,
            serializer=serializer,
            connect_timeout=config.connect_timeout,
            reconnect_initial=config.reconnect.initial,
            reconnect_max=config.reconnect.max,
            max_batch=config.max_batch,
            max_buffer=config.max_buffer,
            max_frame_bytes=config.max_frame_bytes,
            max_queued=config.max_queued,
            delivery=config.delivery,
            group=group,
            max_len=config.max_len,
            retention=config.retention,
        )
    raise AssertionError(f"unhandled bus {config!r}")  # pragma: no cover


def bus_secrets(topology: Topology) -> list[str]:
    """The bus's secrets, signing one first: ``secret``, or the lines of ``secret_file``
    (relative to the topology file; blank lines and ``#`` comments skipped).

    Raises:
        ValueError: the file cannot be read, holds none, or one is shorter than 16 characters.
    """
    from runnerconf.bus.signing import MIN_SECRET_LENGTH

    config = topology.bus
    assert isinstance(config, RedisBusConfig)
    if config.secret is not None:
        return [config.secret] if isinstance(config.secret, str) else list(config.secret)
    assert config.secret_file is not None
    path = FilePath(base_dir_of(topology.source or SourceMap("<memory>"))) / config.secret_file
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the bus secret_file {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from None
    secrets = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not secrets:
        raise ValueError(f"the bus secret_file {str(path)!r} holds no secret")
    if any(len(x) < MIN_SECRET_LENGTH for x in secrets):
        raise ValueError(f"the bus secret_file {str(path)!r} holds a secret of fewer than {MIN_SECRET_LENGTH} characters")
    return secrets


async def build_runner(
    topology: Topology, plan: Plan | None = None, *, runner: str | None = None, bus: WorkerBus | None = None
) -> WorkerRunner:
    """Build one runner and its workers (resolving imports first unless ``plan`` is given).

    Args:
        runner: Which runner of a multi-runner topology (required there).
        bus: Share this bus instead of building the topology's.

    Raises:
        TopologyError: an import, a signature, or a constructor / factory that failed.
        ValueError: a multi-runner topology without ``runner``, or an unknown runner name.
    """
    if runner is None and topology.runners is not None:
        raise ValueError("this topology has several runners: name the one to build (or use build_runners)")
    plan = plan or resolve(topology, runner)
    chosen = [p for p in plan.runners if runner is None or p.spec.name == runner]
    if not chosen:
        raise ValueError(f"the plan has no runner named {runner!r}")
    return await _build(topology, chosen[0], bus if bus is not None else build_bus(topology, group=_group_of([chosen[0]], topology)))


async def build_runners(topology: Topology, plan: Plan | None = None) -> list[WorkerRunner]:
    """Build every runner of the topology on one shared bus (to run them in one process)."""
    plan = plan or resolve(topology)
    bus = build_bus(topology, group=_group_of(plan.runners, topology))
    return [await _build(topology, p, bus) for p in plan.runners]


def _group_of(runners: list[RunnerPlan], topology: Topology) -> str | None:
    """The stream consumer group of a process running these runners: their names (a stream
    topology's runners all have one; see runnerconf.config.references)."""
    names = [p.spec.name for p in runners if p.spec.name]
    return "+".join(names) if names else None


async def _build(topology: Topology, plan: RunnerPlan, bus: WorkerBus) -> WorkerRunner:
    rc = plan.config
    runner = WorkerRunner(
        name=rc.name,
        bus=bus,
        handle_sigint=rc.handle_sigint,
        handle_sigterm=rc.handle_sigterm,
        force_gc=rc.force_gc,
        stop_timeout=rc.stop_timeout,
        cancel_timeout=rc.cancel_timeout,
        on_signal=rc.on_signal,
        on_failure=rc.on_failure,
        check_dangling_tasks=rc.check_dangling_tasks,
    )
    workers = await build_workers(topology, plan)
    for rw in plan.workers:
        if rw.config.parent is not None:
            await workers[rw.config.parent].add_workers(workers[rw.config.name])
    await runner.add_workers(*(w for w in workers.values() if w.parent is None))
    return runner


async def build_workers(topology: Topology, plan: RunnerPlan, names: Collection[str] | None = None) -> dict[str, BaseWorker]:
    """Build the workers of ``plan`` (only those in ``names``, for a reload), in order, by name;
    nothing is attached to a runner or to a parent yet.

    Raises:
        TopologyError: every worker that could not be built, with its line.
    """
    source: SourceMap = topology.source or SourceMap("<memory>")
    workers: dict[str, BaseWorker] = {}
    problems = []
    for rw in plan.workers:
        if names is not None and rw.config.name not in names:
            continue
        try:
            workers[rw.config.name] = await _instantiate(rw)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from user code too
            where = "class" if isinstance(rw.config, ClassWorkerConfig) else "factory" if isinstance(rw.config, FactoryWorkerConfig) else "type"
            problems.append(source.problem((*rw.path, where), "build-failed", f"worker {rw.config.name!r}: {_message(exc)}"))
    if problems:
        raise TopologyError(problems)
    return workers


async def _instantiate(rw: ResolvedWorker) -> BaseWorker:
    config = rw.config
    worker: Any
    if isinstance(config, CommandWorkerConfig):
        worker = CommandWorker(
            config.name,
            config.command,
            cwd=rw.target,
            env={k: _env_value(v) for k, v in config.env.items()},
            inherit_env=config.inherit_env,
            stop_signal=config.stop_signal,
            stop_timeout=config.stop_timeout,
            restart=config.restart,
            max_restarts=config.max_restarts,
            backoff_initial=config.backoff.initial,
            backoff_max=config.backoff.max,
            backoff_factor=config.backoff.factor,
            ready_line=config.ready_line,
            ready_timeout=config.ready_timeout,
            healthcheck=_healthcheck(config.healthcheck),
        )
    elif isinstance(config, PipelineWorkerConfig):
        processors = [p.build() if isinstance(p, _LazyInstance) else p for p in rw.processors]
        worker = PipelineWorker(
            config.name, processors, send_to=config.send_to, on_error=config.on_error, max_queued=config.max_queued
        )
        await worker.queue_frames(config.frames)
        if config.stop_when_done:
            await worker.stop_when_done()
    elif isinstance(config, PipecatPipelineWorkerConfig):
        from runnerconf.config.pipecat import build_pipecat_pipeline

        worker = await build_pipecat_pipeline(rw)
    else:
        if isinstance(config, (ClassWorkerConfig, FactoryWorkerConfig)):
            what = config.class_ if isinstance(config, ClassWorkerConfig) else config.factory
            kwargs = dict(config.params)
        else:  # a kind from a package: its params were checked by its model
            what = f"worker kind {config.type}"  # type: ignore[attr-defined]
            params = config.params  # type: ignore[attr-defined]
            sig = _signature(rw.target)
            if sig is not None and "params" in sig.parameters:
                kwargs = {"params": params}
            else:
                kwargs = {k: getattr(params, k) for k in type(params).model_fields}
        if _accepts(rw.target, "name"):
            kwargs["name"] = config.name
        try:
            worker = rw.target(**kwargs)
            if inspect.isawaitable(worker):
                worker = await worker
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from user code too
            raise RuntimeError(f"{what}(...) raised {_raised(exc)}") from exc
        if not isinstance(worker, BaseWorker):
            raise RuntimeError(f"{what} returned {_describe(worker)}, not a BaseWorker")
        worker.name = config.name
    worker.active = config.active
    worker.depends_on = [(d.name, d.condition) for d in config.depends_on]
    worker.required = config.required
    worker.check_dangling_tasks = config.check_dangling_tasks
    if config.watch:
        await worker.watch_workers(*config.watch)
    return worker


def _healthcheck(config: HealthCheckConfig | None) -> HealthCheck | None:
    if config is None:
        return None
    return HealthCheck(
        exec=config.exec,
        http=config.http,
        tcp=config.tcp,
        interval=config.interval,
        timeout=config.timeout,
        retries=config.retries,
        start_period=config.start_period,
    )


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, Exception) and str(exc) else _raised(exc)


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Launch:
    """A topology built and ready to run: one runner, or a group of them sharing one bus."""

    target: WorkerRunner | RunnerGroup
    auto_end: dict[str, bool]

    @property
    def runners(self) -> list[WorkerRunner]:
        return self.target.runners if isinstance(self.target, RunnerGroup) else [self.target]

    def worker(self, name: str) -> BaseWorker | None:
        """A worker of any of the runners (None once it has finished)."""
        return next((w for r in self.runners if (w := r.get_worker(name)) is not None), None)

    async def run(self) -> WorkerRunner | RunnerGroup:
        """Run until every runner has ended; returns the target."""
        if isinstance(self.target, RunnerGroup):
            await self.target.run(self.auto_end)
        else:
            await self.target.run(auto_end=self.auto_end.get(self.target.name, True))
        return self.target

    async def end(self, reason: str | None = None) -> None:
        await self.target.end(reason)


async def build_topology(topology: Topology, plan: Plan | None = None, *, runner: str | None = None) -> Launch:
    """Build the topology (or its runner named ``runner``) without running it.

    A multi-runner topology without ``runner`` becomes a :class:`RunnerGroup` on one bus.
    """
    plan = plan or resolve(topology, runner)
    if runner is not None or topology.runners is None:
        one = await build_runner(topology, plan, runner=runner)
        return Launch(one, {one.name: plan.runners[0].config.auto_end})
    runners = await build_runners(topology, plan)
    group = RunnerGroup(runners, name=f"topology {topology.source.file if topology.source else ''}".strip())
    return Launch(group, {r.name: p.config.auto_end for r, p in zip(runners, plan.runners)})


async def run_topology(topology: Topology, plan: Plan | None = None, *, runner: str | None = None) -> WorkerRunner | RunnerGroup:
    """Build and run the topology (or its runner named ``runner``) until it ends; return it.

    A multi-runner topology without ``runner`` runs every runner in this process, on one bus.
    """
    launch = await build_topology(topology, plan, runner=runner)
    return await launch.run()
