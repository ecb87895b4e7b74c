"""Several files as one topology (``-f base.yaml -f prod.yaml``), the way Compose merges them.

Later files override earlier ones:

* mappings merge key by key;
* lists of named things (``workers``, ``runners`` and a runner's ``workers``) merge by ``name``:
  an item with a name already there merges into it, a new name is appended;
* any other value (a scalar, any other list) replaces the earlier one;
* ``!reset`` removes: ``key: !reset null`` drops the key (back to its default), and
  ``- !reset {name: printer}`` in a list merged by name drops that item.

``x-*`` keys are the user's own (a place for YAML anchors, as in Compose): they are dropped,
at any level, before the models see the document, except in a command's ``env`` (variable
names are passed on as written).

Every value keeps the file, line and column it came from, so errors name the overlay that set it.
"""

from __future__ import annotations

from typing import Any

from runnerconf.config.source import Path, Reset, SourceMap

__all__ = ["NAMED_LISTS", "finish_document", "merge_documents"]

#: Where lists merge by ``name`` (``*`` is any index).
NAMED_LISTS = {("workers",), ("runners",), ("runners", "*", "workers")}
#: Mappings whose keys are passed on as written (x-* included).
_VERBATIM = {"env"}


def _named(path: Path) -> bool:
    return tuple("*" if isinstance(p, int) else p for p in path) in NAMED_LISTS


class _Side:
    """One side of a merge: a source map and, for copying subtrees in linear time, its tree."""

    def __init__(self, source: SourceMap) -> None:
        self.source = source
        self.children: dict[Path, list[Path]] = {}
        for path in source.values:
            if path:
                self.children.setdefault(path[:-1], []).append(path)

    def copy(self, src: Path, dst: Path, into: SourceMap) -> None:
        """Every location at and under ``src`` filed under ``dst`` in ``into``."""
        stack = [(src, dst)]
        while stack:
            s, d = stack.pop()
            if s in self.source.values:
                into.values[d] = self.source.values[s]
            if s in self.source.keys:
                into.keys[d] = self.source.keys[s]
            stack.extend((c, (*d, *c[len(s) :])) for c in self.children.get(s, ()))


def merge_documents(documents: list[tuple[dict[str, Any], SourceMap]]) -> tuple[dict[str, Any], SourceMap]:
    """One document from ``documents`` (base first), with a source map pointing into each file."""
    data, source = documents[0]
    for over, over_source in documents[1:]:
        merged = SourceMap(source.file)
        data = _Merge(_Side(source), _Side(over_source), merged).mapping(data, over, (), (), ())
        source = merged
    return data, source


class _Merge:
    def __init__(self, base: _Side, over: _Side, into: SourceMap) -> None:
        self.base, self.over, self.into = base, over, into

    def _own(self, bpath: Path, dpath: Path) -> None:
        """The merged container stands where the base file wrote it."""
        base = self.base.source
        if bpath in base.values:
            self.into.values[dpath] = base.values[bpath]
        if bpath in base.keys:
            self.into.keys[dpath] = base.keys[bpath]

    def mapping(self, base: dict[str, Any], over: dict[str, Any], bpath: Path, opath: Path, dpath: Path) -> dict[str, Any]:
        """``over`` merged into ``base`` (at ``bpath`` / ``opath`` in their files), filed at ``dpath``;
        keys keep the base's order (overriding one does not move it), new ones come after."""
        self._own(bpath, dpath)
        result: dict[str, Any] = {}
        for key in [*base, *(k for k in over if k not in base)]:
            b, o, d = (*bpath, key), (*opath, key), (*dpath, key)
            if key not in over:
                result[key] = base[key]
                self.base.copy(b, d, self.into)
                continue
            value, old = over[key], base.get(key)
            if isinstance(value, Reset):
                continue
            if isinstance(old, dict) and isinstance(value, dict):
                result[key] = self.mapping(old, value, b, o, d)
            elif isinstance(old, list) and isinstance(value, list) and _named(d):
                result[key] = self._named(old, value, b, o, d)
            else:
                result[key] = value
                self.over.copy(o, d, self.into)
        return result

    def _named(self, base: list[Any], over: list[Any], bpath: Path, opath: Path, dpath: Path) -> list[Any]:
        """Items merged by ``name``: earlier ones keep their places, new ones are appended."""
        into = self.into
        self._own(bpath, dpath)
        names = {item.get("name"): n for n, item in enumerate(base) if isinstance(item, dict) and isinstance(item.get("name"), str)}
        # What each resulting item is: ("base", n), ("over", j), or ("both", n, j).
        plan: list[tuple[Any, ...]] = [("base", n) for n in range(len(base))]
        dropped: set[int] = set()
        for j, value in enumerate(over):
            target = value.value if isinstance(value, Reset) else value
            name = target.get("name") if isinstance(target, dict) else None
            n = names.get(name) if isinstance(name, str) else None
            if isinstance(value, Reset):
                if n is not None:
                    dropped.add(n)
            elif n is not None and isinstance(value, dict) and isinstance(base[n], dict):
                plan[n] = ("both", n, j)
            else:
                if isinstance(name, str):
                    names[name] = len(plan)
                plan.append(("over", j))
        result: list[Any] = []
        for step in plan:
            if step[0] != "over" and step[1] in dropped:
                continue
            d = (*dpath, len(result))
            if step[0] == "base":
                self.base.copy((*bpath, step[1]), d, into)
                result.append(base[step[1]])
            elif step[0] == "over":
                self.over.copy((*opath, step[1]), d, into)
                result.append(over[step[1]])
            else:
                result.append(self.mapping(base[step[1]], over[step[2]], (*bpath, step[1]), (*opath, step[2]), d))
        return result


def finish_document(data: dict[str, Any], source: SourceMap) -> dict[str, Any]:
    """Drop ``x-*`` keys and what ``!reset`` removed (in one file, or left over after a merge)."""
    return _finish(data, (), source)  # type: ignore[no-any-return]


def _finish(value: Any, path: Path, source: SourceMap) -> Any:
    if isinstance(value, dict):
        if path and path[-1] in _VERBATIM:
            return value
        return {
            k: _finish(v, (*path, k), source)
            for k, v in value.items()
            if not (isinstance(k, str) and k.startswith("x-")) and not isinstance(v, Reset)
        }
    if isinstance(value, list):
        kept = [(n, v) for n, v in enumerate(value) if not isinstance(v, Reset)]
        if len(kept) != len(value):
            for new, (old, _) in enumerate(kept):
                if new != old:
                    source.move((*path, old), (*path, new))
        return [_finish(v, (*path, n), source) for n, (_, v) in enumerate(kept)]
    return value
