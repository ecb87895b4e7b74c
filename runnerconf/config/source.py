"""Safe YAML reading that remembers where every value came from.

Only plain data is read: mappings with string keys, sequences and the scalars of the YAML 1.2
core schema (only ``true``/``false`` are booleans; no sexagesimal numbers, no implicit dates; the
schema check-jsonschema and editors apply). Any other tag (``!!python/object``, custom ``!tags``)
is refused, nothing is constructed, and the document is bounded before it is built: too many
values (an alias bomb, a huge list), too deep a nesting, or an integer too long to convert is an
error with its place, found in bounded time and memory.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from runnerconf.config.errors import Location, Problem, TopologyError, format_path

__all__ = ["MAX_DEPTH", "MAX_NODES", "RESET_TAG", "Path", "Reset", "SourceMap", "parse_scalar", "read_value", "read_yaml"]

#: Values a document may expand to, aliases included (a topology of 10,000 workers has ~100,000).
MAX_NODES = 500_000
#: Nesting depth a document may have.
MAX_DEPTH = 64

Path = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL}
#: Compose's tag for "remove this from what the earlier files said" (see runnerconf.config.overlays).
RESET_TAG = "!reset"


@dataclass(frozen=True, slots=True)
class Reset:
    """A value tagged ``!reset``: the key (or, in a list merged by name, the item) is removed.
    ``value`` is what was written after the tag (a mapping names the list item)."""

    value: Any = None

# The YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_CORE = {
    _NULL: re.compile(r"^(?:~|null|Null|NULL|)$"),
    _BOOL: re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    _INT: re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    _FLOAT: re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
}


#: The implicit tags a plain scalar may have, by its first character (as PyYAML indexes them).
_BY_FIRST: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
for _tag, _pattern in _CORE.items():
    for _first in [*("~nNtTfF" if _tag in (_NULL, _BOOL) else "-+0123456789."), *([""] if _tag == _NULL else [])]:
        _BY_FIRST.setdefault(_first, []).append((_tag, _pattern))
_BY_FIRST.setdefault("<", []).append((_MERGE_TAG, re.compile(r"^<<$")))


class _CoreResolver(BaseResolver):
    """Plain scalars resolve as the YAML 1.2 core schema says (PyYAML's own is YAML 1.1).

    The composer asks once per node: a table lookup on the first character answers most of them
    (names, paths and prose start with a letter), and there are no path resolvers to track.
    """

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            if implicit[0]:
                for tag, pattern in _BY_FIRST.get(value[:1], ()):
                    if pattern.match(value):
                        return tag
            return _STR
        return _SEQ_TAG if kind is SequenceNode else _MAP_TAG

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


if getattr(yaml, "__with_libyaml__", False):

    from yaml._yaml import CParser

    class _Loader(CParser, _CoreResolver):  # type: ignore[misc]
        """libyaml's parser and composer (fast; nodes keep their marks), with the core schema."""

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            _CoreResolver.__init__(self)

else:  # pragma: no cover - PyYAML built without libyaml

    class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer, _CoreResolver):  # type: ignore[no-redef,misc]
        def __init__(self, text: str) -> None:
            yaml.reader.Reader.__init__(self, text)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            _CoreResolver.__init__(self)
            self._count = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            # Bound the document while it is built, not afterwards.
            self._count += 1
            if self._count > MAX_NODES:
                raise _TooLarge(self.peek_event().start_mark)
            return super().compose_node(parent, index)


class _TooLarge(Exception):
    def __init__(self, mark: Any) -> None:
        self.mark = mark


def parse_scalar(text: str) -> Any:
    """A plain (unquoted) scalar as the YAML 1.2 core schema reads it: ``true``, ``3``, ``1.5``,
    ``null`` ... or the string itself."""
    for tag, pattern in _CORE.items():
        if pattern.match(text):
            return _construct(tag, text)
    return text


def _construct(tag: str, value: str) -> Any:
    """A core-schema scalar (raises ValueError for a value that is not of its tag)."""
    if tag == _STR:
        return value
    if tag == _NULL:
        if not _CORE[_NULL].match(value):
            raise ValueError(f"{value!r} is not null")
        return None
    if tag == _BOOL:
        if not _CORE[_BOOL].match(value):
            raise ValueError(f"{value!r} is not a boolean (only true and false are)")
        return value.lower() == "true"
    if tag == _INT:
        text = value.strip()
        if text.startswith(("0o", "0x")):
            base = 8 if text[1] == "o" else 16
            return int(text[2:], base)
        if not re.match(r"^[-+]?[0-9]+$", text):
            raise ValueError(f"{value!r} is not an integer")
        return int(text)
    if tag == _FLOAT:
        lowered = value.strip().lower()
        if lowered in (".inf", "+.inf"):
            return math.inf
        if lowered == "-.inf":
            return -math.inf
        if lowered == ".nan":
            return math.nan
        return float(value)
    raise ValueError(f"unsupported tag {tag!r}")  # pragma: no cover


def _estimate(text: str) -> int:
    """An upper bound of the values in ``text``, counted in C-fast passes: every value but the
    top one stands after a ':', ',', '-', '[', '{' or '?'."""
    return 2 * sum(text.count(c) for c in ":,-[{?") + 2


@dataclass
class SourceMap:
    """Where each value (and each mapping key) of a document stands in its source."""

    file: str
    values: dict[Path, Location] = field(default_factory=dict)
    keys: dict[Path, Location] = field(default_factory=dict)

    def locate(self, path: Path, *, key: bool = False) -> Location:
        """The location of ``path``, or of its nearest ancestor that has one."""
        if key and path in self.keys:
            return self.keys[path]
        p = tuple(path)
        while p:
            loc = self.values.get(p)
            if loc is not None:
                return loc
            p = p[:-1]
        return self.values.get((), Location(self.file, 1, 1))

    def problem(self, path: Path, code: str, message: str, *, key: bool = False, severity: str = "error") -> Problem:
        loc = self.locate(path, key=key)
        return Problem(loc.file, loc.line, loc.column, format_path(path), code, message, severity)  # type: ignore[arg-type]

    def move(self, old: Path, new: Path) -> None:
        """Re-file every location under ``old`` as under ``new`` (a renamed key)."""
        for table in (self.values, self.keys):
            for p in [p for p in table if p[: len(old)] == old]:
                table[new + p[len(old) :]] = table.pop(p)


_new_location = tuple.__new__


class _Reader:
    def __init__(self, file: str) -> None:
        self.source = SourceMap(file)
        self.file = file
        self.count = 0

    def loc(self, node: Node) -> Location:
        mark = node.start_mark
        return _new_location(Location, (self.file, mark.line + 1, mark.column + 1))  # one per value: the C path

    def fail(self, node: Node, path: Path, code: str, message: str) -> None:
        loc = self.loc(node)
        raise TopologyError([Problem(loc.file, loc.line, loc.column, format_path(path), code, message)])

    def convert(self, node: Node, path: Path, active: frozenset[int]) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            self.fail(
                node,
                path,
                "too-large",
                f"the document expands to more than {MAX_NODES:,} values (aliases included); "
                "refusing it (is it an alias bomb?)",
            )
        if len(path) > MAX_DEPTH:
            self.fail(node, path, "too-deep", f"the document is nested deeper than {MAX_DEPTH} levels")
        if id(node) in active:
            self.fail(node, path, "recursive-alias", "an alias refers to a value that contains it")
        self.source.values[path] = self.loc(node)
        if node.tag == RESET_TAG:
            if isinstance(node, ScalarNode):
                return Reset()  # `key: !reset null` or `key: !reset`: whatever is written, gone
            node.tag = _SEQ_TAG if isinstance(node, SequenceNode) else _MAP_TAG
            return Reset(self.convert(node, path, active))
        if isinstance(node, ScalarNode):
            if node.tag not in _SCALAR_TAGS:
                self.fail(node, path, "bad-tag", f"unsupported YAML tag {node.tag!r}: only plain data is read")
            try:
                return _construct(node.tag, node.value)
            except ValueError as exc:
                self.fail(node, path, "bad-scalar", _scalar_message(node, exc))
        inner = active | {id(node)}
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ_TAG:
                self.fail(node, path, "bad-tag", f"unsupported YAML tag {node.tag!r}: only plain data is read")
            return [self.convert(item, (*path, i), inner) for i, item in enumerate(node.value)]
        assert isinstance(node, MappingNode)
        if node.tag != _MAP_TAG:
            self.fail(node, path, "bad-tag", f"unsupported YAML tag {node.tag!r}: only plain data is read")
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self._merge(value_node, path, inner, merged)
                continue
            key = self.key(key_node, path)
            if key in result:
                first = self.source.keys[(*path, key)]
                self.fail(key_node, (*path, key), "duplicate-key", f"duplicate key {key!r} (first at line {first.line})")
            self.source.keys[(*path, key)] = self.loc(key_node)
            result[key] = self.convert(value_node, (*path, key), inner)
        # Keys written in the mapping win over merged ones, as YAML's merge key says.
        return {**merged, **result} if merged else result

    def _merge(self, node: Node, path: Path, active: frozenset[int], into: dict[str, Any]) -> None:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        own = self.source.values[path]
        for src in sources:
            if not isinstance(src, MappingNode):
                self.fail(src, path, "bad-merge", "a merge key ('<<') takes a mapping or a list of mappings")
            value = self.convert(src, path, active)
            for k, v in value.items():
                into.setdefault(k, v)
        self.source.values[path] = own  # the merged mapping stands where it is written

    def key(self, node: Node, path: Path) -> str:
        if not isinstance(node, ScalarNode) or node.tag != _STR:
            shown = node.value if isinstance(node, ScalarNode) else type(node).__name__
            self.fail(node, path, "bad-key", f"mapping keys must be strings, got {shown!r} (quote it)")
        return str(node.value)


def _scalar_message(node: ScalarNode, exc: ValueError) -> str:
    if node.tag == _INT and "Exceeds the limit" in str(exc):
        return f"an integer of {len(node.value):,} digits is too long; refusing it"
    shown = node.value if len(node.value) <= 60 else node.value[:57] + "..."
    return f"cannot read {shown!r} as {node.tag.rsplit(':', 1)[-1]}: {exc}"


def read_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain data plus its :class:`SourceMap`.

    Raises:
        TopologyError: a syntax error, several documents, an unsupported tag, a duplicate key,
            too many values or too deep a nesting, or an empty document.
    """
    node = _compose(text, file)
    if node is None:
        raise TopologyError([Problem(file, 1, 1, "", "empty", "the document is empty; expected a mapping with 'workers'")])
    reader = _Reader(file)
    data = reader.convert(node, (), frozenset())
    if not isinstance(data, dict):
        loc = reader.loc(node)
        raise TopologyError(
            [Problem(file, loc.line, loc.column, "", "not-a-mapping", f"expected a mapping at the top, got {type(data).__name__}")]
        )
    return data, reader.source


def read_value(text: str, file: str) -> Any:
    """One YAML value (a scalar, list or mapping) read with the same rules and bounds as a file."""
    node = _compose(text, file)
    return None if node is None else _Reader(file).convert(node, (), frozenset())


def _compose(text: str, file: str) -> Node | None:
    if _estimate(text) > 2 * MAX_NODES:
        raise TopologyError(
            [Problem(file, 1, 1, "", "too-large", f"the document holds more than {MAX_NODES:,} values; refusing it")]
        )
    try:
        loader = _Loader(text)
        try:
            return loader.get_single_node()  # type: ignore[no-any-return]
        finally:
            loader.dispose()
    except _TooLarge as exc:  # pragma: no cover - the pure-Python fallback only
        raise TopologyError(
            [Problem(file, exc.mark.line + 1, exc.mark.column + 1, "", "too-large", f"the document holds more than {MAX_NODES:,} values")]
        ) from None
    except RecursionError:  # pragma: no cover - the pure-Python fallback only
        raise TopologyError(
            [Problem(file, 1, 1, "", "too-deep", f"the document is nested deeper than {MAX_DEPTH} levels")]
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(s for s in (exc.context, exc.problem) if s)
        code = "yaml-syntax"
        if "expected a single document" in what:
            what = "expected a single YAML document, found several (remove the extra '---')"
        elif "maximum nesting depth" in what:
            code, what = "too-deep", f"the document is nested deeper than YAML parsers allow (here {MAX_DEPTH} levels)"
        else:
            what = f"invalid YAML: {what}"
        raise TopologyError([Problem(file, line, col, "", code, what)]) from None
    except yaml.YAMLError as exc:
        raise TopologyError([Problem(file, 1, 1, "", "yaml-syntax", f"invalid YAML: {exc}")]) from None
