"""``type: pipecat_pipeline``: resolving and building pipecat pipelines from a topology.

Kept apart from :mod:`runnerconf.config.build` because everything here needs pipecat-ai (the
``pipecat`` extra), imported only once a topology that uses the kind is resolved: validating the
file (``runnerconf validate`` without ``--imports``) never imports pipecat.

``params`` are checked against the real signature of pipecat's ``PipelineWorker`` (read with
:mod:`inspect` each run, so a newer pipecat is checked against itself): every keyword whose type
a YAML value can hold is accepted with that type -- booleans, numbers, strings, mappings,
pipecat's pydantic models such as ``PipelineParams`` (unknown fields refused), enums by value,
tuples of frame classes as lists of import paths -- and the rest (clocks, observers, task
managers) are unknown keys.
"""

from __future__ import annotations

import enum
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model

from runnerconf.config.build import ImportStringError, ResolvedWorker, _describe, _params_error, import_string
from runnerconf.config.errors import Problem
from runnerconf.config.interpolate import Placeholder
from runnerconf.config.messages import translate_validation_error
from runnerconf.config.source import SourceMap
from runnerconf.config.types import ImportString
from runnerconf.config.worker_models import PipecatPipelineWorkerConfig

__all__ = ["build_pipecat_pipeline", "pipeline_params_model", "resolve_pipecat_pipeline"]

#: PipelineWorker keywords a topology never sets: the worker's own keys set them, or they are
#: deprecated aliases.
_NOT_PARAMS = {"self", "pipeline", "name", "active", "check_dangling_tasks", "tool_resources"}


def resolve_pipecat_pipeline(rw: ResolvedWorker, source: SourceMap) -> list[Problem]:
    """Import the processors and converters of a pipecat pipeline and check its params."""
    from runnerconf.pipecat import INSTALL_HINT, require_pipecat

    config: PipecatPipelineWorkerConfig = rw.config  # type: ignore[assignment]
    who = f"worker {config.name!r}"

    def problem(key: tuple[str | int, ...], message: str, code: str = "import", severity: str = "error") -> Problem:
        return source.problem((*rw.path, *key), code, f"{who}: {message}", severity=severity)

    try:
        require_pipecat()
    except ImportError:
        return [problem(("type",), INSTALL_HINT, "missing-extra")]
    from pipecat.processors.frame_processor import FrameProcessor

    problems: list[Problem] = []
    for j, spec in enumerate(config.processors):
        path, params = (spec, {}) if isinstance(spec, str) else (spec.call, spec.params)
        if isinstance(path, Placeholder):
            problems.append(problem(("processors", j), "this processor not checked: the value holds a variable (--no-interpolate)", "not-checked", "warning"))
            continue
        try:
            target = import_string(path)
        except ImportStringError as exc:
            problems.append(problem(("processors", j), str(exc)))
            continue
        if isinstance(target, type):
            if not issubclass(target, FrameProcessor):
                problems.append(problem(("processors", j), f"{path!r} is not a pipecat FrameProcessor (it is {_describe(target)})", "not-a-processor"))
                continue
        elif not callable(target):
            problems.append(problem(("processors", j), f"{path!r} is neither a FrameProcessor class nor a function returning one (it is {_describe(target)})", "not-callable"))
            continue
        error = _params_error(target, params)
        if error:
            problems.append(problem(("processors", j), f"params do not fit {path}: {error}", "bad-params"))
            continue
        rw.processors.append(_Processor(target, params, path))  # type: ignore[arg-type]
    model = pipeline_params_model()
    try:
        checked = TypeAdapter(model).validate_python(config.params)
    except ValidationError as exc:
        problems.extend(translate_validation_error(exc, source, root=model, prefix=(*rw.path, "params")))
    else:
        rw.target = _keywords(checked)
    for j, path in enumerate(config.converters):
        try:
            converter = import_string(path)
        except ImportStringError as exc:
            problems.append(problem(("converters", j), str(exc)))
            continue
        if not (callable(getattr(converter, "to_payload", None)) or callable(getattr(converter, "from_payload", None))):
            problems.append(problem(("converters", j), f"{path!r} is not a frame converter: it has neither to_payload() nor from_payload()", "not-a-converter"))
            continue
        rw.converters.append(converter)
    return problems


async def build_pipecat_pipeline(rw: ResolvedWorker) -> Any:
    """The worker of a resolved pipecat pipeline, with its frames queued."""
    from runnerconf.pipecat.worker import PipecatPipelineWorker

    config: PipecatPipelineWorkerConfig = rw.config  # type: ignore[assignment]
    processors = [p.build() for p in rw.processors]  # type: ignore[attr-defined]
    worker = PipecatPipelineWorker(
        config.name,
        processors,
        send_to=config.send_to,
        on_error=config.on_error,
        converters=rw.converters,
        active=config.active,
        check_dangling_tasks=config.check_dangling_tasks,
        **(rw.target or {}),
    )
    for i, frame in enumerate(config.frames):
        converted = worker._codec.from_payload(frame)
        if converted is None:
            raise ValueError(f"frames[{i}]: no frame converter takes {frame!r} (strings are TextFrames; a mapping needs a converter)")
        await worker.pipeline_worker.queue_frame(converted)
    if config.stop_when_done:
        await worker.stop_when_done()
    return worker


class _Processor:
    """A processor class or factory with its params, called when the worker is built."""

    def __init__(self, target: Callable[..., Any], params: dict[str, Any], path: str) -> None:
        self.target, self.params, self.path = target, params, path

    def build(self) -> Any:
        from pipecat.processors.frame_processor import FrameProcessor

        processor = self.target(**self.params)
        if not isinstance(processor, FrameProcessor):
            raise TypeError(f"{self.path}(...) returned {_describe(processor)}, not a pipecat FrameProcessor")
        return processor


@functools.cache
def pipeline_params_model() -> type[BaseModel]:
    """A model of the ``PipelineWorker`` keywords a topology can set, from pipecat's signature."""
    from pipecat.pipeline.worker import PipelineWorker

    init = PipelineWorker.__init__
    hints = typing.get_type_hints(init)
    fields: dict[str, Any] = {}
    for name, param in inspect.signature(init).parameters.items():
        if name in _NOT_PARAMS or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        kind = _yaml_type(hints.get(name, Any))
        if kind is None:
            continue  # not something a YAML value can be: an unknown key
        fields[name] = (kind, None if param.default is param.empty else param.default)
    return create_model(  # type: ignore[call-overload, no-any-return]
        "PipelineWorkerParams", __config__=ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True), **fields
    )


def _keywords(checked: BaseModel) -> dict[str, Any]:
    """The keywords for PipelineWorker: only those set, with pipecat's own types."""
    from pipecat.pipeline.worker import PipelineWorker

    hints = typing.get_type_hints(PipelineWorker.__init__)
    out: dict[str, Any] = {}
    for name in checked.model_fields_set:
        value = getattr(checked, name)
        hint = _optional_inner(hints.get(name, Any))
        if isinstance(value, list) and typing.get_origin(hint) is tuple:
            value = tuple(value)
        elif isinstance(value, BaseModel) and isinstance(hint, type) and issubclass(hint, BaseModel):
            value = hint(**value.model_dump(exclude_unset=True))
        elif isinstance(value, str) and isinstance(hint, type) and issubclass(hint, enum.Enum):
            value = hint(value)
        out[name] = value
    return out


def _optional_inner(hint: Any) -> Any:
    if typing.get_origin(hint) in (Union, getattr(__import__("types"), "UnionType", Union)):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _yaml_type(hint: Any) -> Any:
    """The type a topology writes for a keyword annotated ``hint``, or None if there is none."""
    inner = _optional_inner(hint)
    optional = inner is not hint
    kind = _plain_yaml_type(inner)
    if kind is None:
        return None
    return kind | None if optional else kind  # type: ignore[operator]


def _plain_yaml_type(hint: Any) -> Any:
    if hint is Any:
        return Any
    if hint in (bool, int, float, str):
        return hint
    origin = typing.get_origin(hint)
    if hint is dict or origin is dict:
        return dict[str, Any]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return Literal[tuple(m.value for m in hint)]  # type: ignore[misc]  (by value, as YAML writes them)
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        config = {**hint.model_config, "extra": "forbid", "strict": True}
        return type(hint.__name__, (hint,), {"model_config": config, "__module__": hint.__module__})
    if origin is tuple:
        args = typing.get_args(hint)
        item = args[0] if args else Any
        if typing.get_origin(item) is type:
            (base,) = typing.get_args(item)
            return Annotated[list[ImportString], AfterValidator(functools.partial(_classes, base=base))]
        if item in (str, int, float, bool):
            return list[item]  # type: ignore[valid-type]
    return None


def _classes(paths: list[str], *, base: type) -> list[type]:
    """Import paths of subclasses of ``base`` (frame types), as the classes."""
    classes = []
    for path in paths:
        try:
            cls = import_string(path)
        except ImportStringError as exc:
            raise ValueError(str(exc)) from exc
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise ValueError(f"{path!r} is not a {base.__name__} class (it is {_describe(cls)})")
        classes.append(cls)
    return classes


def processor_paths(config: PipecatPipelineWorkerConfig) -> list[str]:
    """Import paths a pipecat pipeline names (for the modules beside the topology)."""
    return [p if isinstance(p, str) else p.call for p in config.processors] + list(config.converters)

