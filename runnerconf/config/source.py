"""Safe YAML reading that remembers where every value came from.

Only plain data is read: mappings with string keys, sequences and the core scalar types. Any
other tag (``!!python/object``, custom ``!tags``) is refused, nothing is constructed, and alias
expansion is bounded so a "billion laughs" document fails fast with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runnerconf.config.errors import Location, Problem, TopologyError, format_path

__all__ = ["MAX_DEPTH", "MAX_NODES", "Path", "SourceMap", "read_yaml"]

#: Values a document may expand to, aliases included (a real topology has a few hundred).
MAX_NODES = 100_000
#: Nesting depth a document may have.
MAX_DEPTH = 64

Path = tuple[str | int, ...]

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


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


class _Reader:
    def __init__(self, file: str) -> None:
        self.source = SourceMap(file)
        self.file = file
        self.count = 0
        self.problems: list[Problem] = []
        self._constructor = SafeConstructor()

    def loc(self, node: Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

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
        if isinstance(node, ScalarNode):
            if node.tag not in _SCALAR_TAGS:
                self.fail(node, path, "bad-tag", f"unsupported YAML tag {node.tag!r}: only plain data is read")
            return self._constructor.construct_object(node, deep=True)
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
        if not isinstance(node, ScalarNode) or node.tag != "tag:yaml.org,2002:str":
            shown = node.value if isinstance(node, ScalarNode) else type(node).__name__
            self.fail(node, path, "bad-key", f"mapping keys must be strings, got {shown!r} (quote it)")
        return str(node.value)


def read_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain data plus its :class:`SourceMap`.

    Raises:
        TopologyError: a syntax error, several documents, an unsupported tag, a duplicate key,
            an alias bomb, or an empty document.
    """
    reader = _Reader(file)
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(s for s in (exc.context, exc.problem) if s)
        if "expected a single document" in what:
            what = "expected a single YAML document, found several (remove the extra '---')"
        raise TopologyError([Problem(file, line, col, "", "yaml-syntax", f"invalid YAML: {what}")]) from exc
    except yaml.YAMLError as exc:
        raise TopologyError([Problem(file, 1, 1, "", "yaml-syntax", f"invalid YAML: {exc}")]) from exc
    if node is None:
        raise TopologyError([Problem(file, 1, 1, "", "empty", "the document is empty; expected a mapping with 'workers'")])
    data = reader.convert(node, (), frozenset())
    if not isinstance(data, dict):
        loc = reader.loc(node)
        raise TopologyError(
            [Problem(file, loc.line, loc.column, "", "not-a-mapping", f"expected a mapping at the top, got {type(data).__name__}")]
        )
    return data, reader.source
