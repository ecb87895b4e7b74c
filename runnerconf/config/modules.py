"""Importing the modules a topology names from beside it, without shadowing anything.

A topology's ``class:``, ``factory:`` and processor paths may name modules kept in the topology's
directory (or the current one), as a script finds its neighbours. Putting those directories on
``sys.path`` would let any file there shadow, or stand in for, a module the runtime imports: a
stray ``redis.py`` or ``hiredis.py`` (redis-py tries ``import hiredis`` and uses it if found).

So the directories are not put on ``sys.path``. A finder placed last on ``sys.meta_path`` serves
modules from them only to two importers: runnerconf importing a module the topology names, and
code that was itself loaded from those directories (a topology module importing its sibling).
Installed packages always win, and nothing else is ever served a file from there.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["TopologyModuleFinder", "allow_topology_modules"]

_BOOTSTRAP = ("<frozen importlib", os.path.dirname(importlib.__file__))


class TopologyModuleFinder(importlib.abc.MetaPathFinder):
    """Finds top-level modules in ``dirs`` for the importers described in the module docs."""

    def __init__(self) -> None:
        self.dirs: list[str] = []
        self.named: set[str] = set()
        self.packages: set[str] = set()  # directories of the packages served from ``dirs``
        self._file_finders: dict[str, importlib.machinery.FileFinder] = {}

    def add(self, dirs: Iterable[str], named: Iterable[str]) -> None:
        for d in dirs:
            d = os.path.realpath(d)
            if d not in self.dirs:
                self.dirs.append(d)
        self.named.update(named)

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if path is not None or "." in fullname or not self.dirs:
            return None  # submodules are found through their package's __path__
        if fullname not in self.named and not self._imported_from_topology():
            return None
        for d in self.dirs:
            finder = self._file_finders.get(d)
            if finder is None:
                finder = self._file_finders[d] = importlib.machinery.FileFinder(
                    d, (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
                )
            spec = finder.find_spec(fullname, target)
            if spec is not None:
                for location in spec.submodule_search_locations or ():
                    self.packages.add(os.path.realpath(location))
                return spec
        return None

    def invalidate_caches(self) -> None:
        for finder in self._file_finders.values():
            finder.invalidate_caches()

    def _imported_from_topology(self) -> bool:
        """Whether the code running the ``import`` was loaded from one of ``dirs``."""
        frame = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename.startswith(_BOOTSTRAP):
            frame = frame.f_back  # type: ignore[assignment]
        if frame is None:
            return False
        importer = frame.f_globals.get("__file__")
        if not isinstance(importer, str):
            return False
        where = os.path.realpath(importer)
        # A module right in one of the directories, or in a package served from them; not
        # anything further below (a virtualenv kept in the project directory is not the project).
        return os.path.dirname(where) in self.dirs or any(where.startswith(p + os.sep) for p in self.packages)


_FINDER = TopologyModuleFinder()


def allow_topology_modules(file: str, named: Iterable[str]) -> None:
    """Let the modules ``named`` (and their siblings) be imported from beside ``file`` and from
    the current directory."""
    dirs = [os.getcwd()]
    if not file.startswith("<"):
        dirs.insert(0, str(Path(file).resolve().parent))  # the topology's own directory first
    _FINDER.add(dirs, named)
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)  # last: whatever is installed wins
