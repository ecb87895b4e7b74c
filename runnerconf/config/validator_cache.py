"""The topology model's validator, kept between runs in the user's cache directory.

Building pydantic's validator for the built-in topology model is most of what a quick command
waits on (``validate`` of a small file, ``config``, the start of ``up``): pydantic generates the
core schema from the model classes in Python, and looks for its plugins, which imports
``importlib.metadata`` and reads the entry points of every installed distribution. The core
schema it ends with is a tree of dicts, lists and scalars naming model classes and the rules of
:mod:`runnerconf.config.checks`; pydantic-core turns it into a validator in about a millisecond.

So the tree is kept, as JSON: classes and functions by name (``module:qualname``), never pickled
code. It serves twice:

* :func:`validator` -- the model's own validator, made from the file: the same schema pydantic
  makes, so the same results and errors; the model classes stay unbuilt until something else
  needs them (a dump, a JSON Schema);
* :func:`checker` -- the same schema with every model class replaced by a plain record
  (:class:`Checked`): it says whether a document is valid, running the same rules, without
  importing pydantic or the models at all. ``runnerconf validate`` answers with it for a valid
  file and falls back to the models (and their messages) for anything else.

A file is used only when it is in a directory and a file of this user that nobody else may write
to; when it was written for this format, this Python, pydantic and pydantic-core and runnerconf,
and the sources of runnerconf's configuration modules are still those it was made from (a
digest of each, so that an editable install that changes a model starts again); and when every
name in it resolves to what a topology schema may name: a model class or a function of
runnerconf's configuration modules, ``list`` or ``dict``, or a class of theirs that declares
itself ``cacheable``. (A bound given as ``Field(ge=...)`` next to a rule of ours would put one of
pydantic's private checks in the schema; the types put bounds inside instead, see ``Count``.) Anything else -- no directory, a file that does not parse, a
name that does not resolve -- is a miss: pydantic builds the validator as it would have, and the
file is written again.

``RUNNERCONF_CACHE_DIR`` names the directory (empty: keep nothing); otherwise it is
``$XDG_CACHE_HOME/runnerconf`` or ``~/.cache/runnerconf``.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["ENV", "Checked", "CacheMiss", "cache_dir", "cache_file", "checker", "decode", "encode", "validate", "validator"]


def _debug(message: str, *args: Any) -> None:
    import logging  # only on a miss: a hit does not pay for logging's import

    logging.getLogger(__name__).debug(message, *args)


#: Bumped when the file's layout changes.
FORMAT = 2
ENV = "RUNNERCONF_CACHE_DIR"
#: The model :func:`checker` checks against.
TOPOLOGY = "runnerconf.config.models:Topology"
#: Modules whose functions and models a topology's core schema may name.
_SCHEMA_PREFIX = "runnerconf.config."
#: The module of the rules a checker may run (it imports nothing of pydantic).
_CHECKS = "runnerconf.config.checks"
_BUILTINS = {"list": list, "dict": dict}
# Keys pydantic-core does not read when it validates: JSON Schema hooks and serializers.
_DROPPED = frozenset({"metadata", "serialization"})


class CacheMiss(Exception):
    """The file cannot be used (it is then made again)."""


class Checked:
    """What a checker makes of a mapping a model would have made: its fields as attributes.

    The rules that take a model (``redis_options_fit_the_wire``) read its fields; the ones that
    make one (``names_to``, ``Defaults``) make one of these.
    """

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    @classmethod
    def model_construct(cls) -> Checked:
        return cls()


def validate(model: type[BaseModel], data: Any) -> Any:
    """``model.model_validate(data)``, with the validator kept between runs where it can be."""
    kept = validator(model)
    if kept is None:
        return model.model_validate(data)
    return kept.validate_python(data)


@functools.cache
def validator(model: type[BaseModel]) -> Any:
    """A validator of ``model`` from the cache directory (made and kept on a miss), or None when
    nothing is kept (no usable directory, a model made at run time): use pydantic's own then."""
    path = cache_file(f"{model.__module__}:{model.__qualname__}")
    if path is None or not _named(model):
        return None  # a model made at run time (kinds of installed packages) is not kept
    from pydantic_core import SchemaValidator

    try:
        schema, config = _read(path, shadow=False)
        return SchemaValidator(schema, config)
    except FileNotFoundError:
        pass
    except Exception as exc:  # any file we cannot use is one to make again
        _debug("validator cache %s not used: %s", path, exc)
    model.model_rebuild()
    schema = model.__pydantic_core_schema__
    config = _config_of(schema)
    try:
        _write(path, encode(schema), encode(config))
    except (OSError, CacheMiss) as exc:
        _debug("validator cache %s not written: %s", path, exc)
        return None
    return SchemaValidator(schema, config)


@functools.cache
def checker() -> Any:
    """A validator of the built-in topology model that makes :class:`Checked` records instead
    of models, from the file :func:`validator` keeps; None when there is none to use (then the
    models must decide). Neither pydantic nor the models are imported."""
    path = cache_file(TOPOLOGY)
    if path is None:
        return None
    try:
        schema, config = _read(path, shadow=True)
        from pydantic_core import SchemaValidator

        return SchemaValidator(schema, config)
    except FileNotFoundError:
        return None
    except Exception as exc:
        _debug("validator cache %s not used for checking: %s", path, exc)
        return None


def cache_dir() -> Path | None:
    """The directory files are kept in, or None when ``RUNNERCONF_CACHE_DIR`` is empty (or there
    is no home directory to find one in)."""
    chosen = os.environ.get(ENV)
    if chosen is not None:
        return Path(chosen) if chosen else None
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # unset, or relative (which the XDG spec says to ignore)
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None  # no home directory: nowhere to keep anything (never the working directory)
        base = os.path.join(home, ".cache")
    return Path(base) / "runnerconf"


def cache_file(name: str) -> Path | None:
    """Where the validator of the model ``module:qualname`` is kept (None: nothing is kept)."""
    directory = cache_dir()
    if directory is None:
        return None
    import pydantic_core

    from runnerconf._version import __version__

    python = f"py{sys.version_info[0]}.{sys.version_info[1]}"
    return directory / f"{name.replace(':', '.')}-{FORMAT}-{python}-pydantic-core{pydantic_core.__version__}-runnerconf{__version__}.json"


# -- files -----------------------------------------------------------------------------------


def _package_root() -> str:
    import runnerconf

    return os.path.dirname(os.path.abspath(runnerconf.__file__))


def _sources() -> dict[str, str]:
    """A digest of every configuration module loaded (the schema is made of them) and of
    pydantic's version file, by path (relative to runnerconf's package, or ``pydantic:``)."""
    import pydantic.version

    root = _package_root()
    digests = {"pydantic:version.py": _digest(pydantic.version.__file__)}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.startswith(_SCHEMA_PREFIX) and path:
            digests[os.path.relpath(path, root)] = _digest(path)
    return digests


def _source_path(key: str) -> str:
    if key.startswith("pydantic:"):
        import importlib.util

        spec = importlib.util.find_spec("pydantic")  # the package's location, without importing it
        if spec is None or spec.origin is None:
            raise CacheMiss("pydantic is not installed")
        return os.path.join(os.path.dirname(spec.origin), key.removeprefix("pydantic:"))
    if os.path.isabs(key) or ".." in Path(key).parts:
        raise CacheMiss(f"a source outside the package: {key}")
    return os.path.join(_package_root(), key)


def _digest(path: str) -> str:
    # The hash Python checks hash-based .pyc files with: made to tell a changed source.
    from importlib.util import source_hash

    with open(path, "rb") as f:
        return source_hash(f.read()).hex()


def _private(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _write(path: Path, schema: Any, config: Any) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not _private(os.stat(path.parent)):
        raise CacheMiss(f"{path.parent} may be written by others")
    document = {"format": FORMAT, "sources": _sources(), "config": config, "schema": schema}
    text = json.dumps(document, separators=(",", ":"), allow_nan=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(partial, path)  # readers see the old file or the whole new one
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _read(path: Path, *, shadow: bool) -> tuple[Any, Any]:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        if not (_private(os.fstat(f.fileno())) and _private(os.stat(path.parent))):
            raise CacheMiss("the file or its directory may be written by others")
        document = json.loads(f.read())
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CacheMiss("made for another format")
    sources = document.get("sources")
    if not isinstance(sources, dict) or "pydantic:version.py" not in sources:
        raise CacheMiss("no sources")
    for key, digest in sources.items():
        try:
            current = _digest(_source_path(key))
        except OSError as exc:
            raise CacheMiss(f"{key}: {exc}") from exc
        if current != digest:
            raise CacheMiss(f"{key} changed")
    return decode(document["schema"], shadow=shadow), decode(document.get("config"), shadow=shadow)


def _config_of(schema: Any) -> Any:
    """The core config pydantic gives the model's own validator (that of its top model schema)."""
    while isinstance(schema, dict):
        if schema.get("type") == "model":
            return schema.get("config")
        schema = schema.get("schema")
    return None


# -- the JSON form ---------------------------------------------------------------------------
# Scalars, lists and dicts are themselves; a tuple is {"$tuple": [...]}; a model class is
# {"$model": "module:qualname"}, another class or a function {"$ref": ...}; functools.partial is
# {"$partial": ref, "args": [...], "kwargs": {...}}; a cacheable object is {"$new": ref, "args":
# [...]} (what its __reduce__ gives). A dict with a key that starts with "$" is {"$dict": {...}}.


def encode(value: Any) -> Any:
    """The JSON form of a core schema (raises :class:`CacheMiss` for what it cannot name)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        items = {k: encode(v) for k, v in value.items() if k not in _DROPPED}
        if not all(isinstance(k, str) for k in items):
            raise CacheMiss("a key that is not a string")
        return {"$dict": items} if any(k.startswith("$") for k in items) else items
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, functools.partial):
        return {"$partial": _name(value.func), "args": encode(list(value.args)), "kwargs": encode(dict(value.keywords))}
    if isinstance(value, type):
        from pydantic import BaseModel

        return {"$model" if issubclass(value, BaseModel) else "$ref": _name(value)}
    if isinstance(value, types.FunctionType):
        return {"$ref": _name(value)}
    if getattr(type(value), "cacheable", False) is True:
        constructor, args = value.__reduce__()
        return {"$new": _name(constructor), "args": encode(list(args))}
    raise CacheMiss(f"cannot name {value!r}")


def decode(value: Any, *, shadow: bool = False) -> Any:
    """A core schema from its JSON form (raises :class:`CacheMiss` for a name it may not use).
    With ``shadow``, model classes become :class:`Checked` and only the rules of
    :mod:`runnerconf.config.checks` may be named."""
    if isinstance(value, list):
        return [decode(v, shadow=shadow) for v in value]
    if not isinstance(value, dict):
        return value
    if "$model" in value:
        if shadow:
            _check_name(value["$model"])
            return Checked
        model = _resolve(value["$model"])
        if not _is_model(model):
            raise CacheMiss(f"{value['$model']} is not a model")
        return model
    if "$ref" in value:
        return _resolve(value["$ref"], shadow=shadow)
    if "$tuple" in value:
        return tuple(decode(v, shadow=shadow) for v in value["$tuple"])
    if "$partial" in value:
        func = _resolve(value["$partial"], shadow=shadow)
        if not isinstance(func, types.FunctionType):
            raise CacheMiss("a partial of something other than a function")
        return functools.partial(func, *decode(value["args"], shadow=shadow), **decode(value["kwargs"], shadow=shadow))
    if "$new" in value:
        cls = _resolve(value["$new"], shadow=shadow)
        if not (isinstance(cls, type) and getattr(cls, "cacheable", False) is True):
            raise CacheMiss(f"{value['$new']} is not cacheable")
        return cls(*decode(value["args"], shadow=shadow))
    if "$dict" in value:
        value = value["$dict"]
    decoded = {k: decode(v, shadow=shadow) for k, v in value.items()}
    if shadow and decoded.get("type") == "model":
        decoded.pop("post_init", None)  # the models' own set-up (private attributes)
    return decoded


def _is_model(obj: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _named(model: type[BaseModel]) -> bool:
    try:
        return _resolve(f"{model.__module__}:{model.__qualname__}") is model
    except CacheMiss:
        return False


def _name(obj: Any) -> str:
    name = f"{obj.__module__}:{obj.__qualname__}"
    if _resolve(name) is not obj:
        raise CacheMiss(f"{name} does not name {obj!r}")
    return name


def _check_name(name: Any) -> tuple[str, str]:
    if not isinstance(name, str) or name.count(":") != 1:
        raise CacheMiss(f"not a name: {name!r}")
    module_name, qualname = name.split(":")
    if module_name == "builtins":
        if qualname not in _BUILTINS:
            raise CacheMiss(f"{name} may not be named")
    elif not module_name.startswith(_SCHEMA_PREFIX):
        raise CacheMiss(f"{name} may not be named")
    return module_name, qualname


def _resolve(name: Any, *, shadow: bool = False) -> Any:
    """What ``module:qualname`` names, if a topology schema may name it (with ``shadow``: if
    a checker may run it)."""
    module_name, qualname = _check_name(name)
    if module_name == "builtins":
        return _BUILTINS[qualname]
    if shadow and module_name.startswith(_SCHEMA_PREFIX) and module_name != _CHECKS:
        raise CacheMiss(f"{name} is not a rule of {_CHECKS}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise CacheMiss(f"{name} does not resolve") from exc
    if module_name.startswith(_SCHEMA_PREFIX):
        if isinstance(obj, type):
            if not (getattr(obj, "cacheable", False) is True or (not shadow and _is_model(obj))):
                raise CacheMiss(f"{name} is not a model or a cacheable class")
        elif not (isinstance(obj, types.FunctionType) and obj.__module__ == module_name):
            raise CacheMiss(f"{name} is not a function of {module_name}")
    return obj
