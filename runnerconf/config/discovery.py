"""Which files are topologies: for ``validate DIR`` and for the pre-commit hooks.

A YAML file is a topology when its path matches :data:`DEFAULT_PATTERN` (``topology.yaml``,
``runnerconf.yaml``, ``*.topology.yaml``, the same with ``.yml``) or another pattern given, or
when its leading comments hold the yaml-language-server modeline naming our schema::

    # yaml-language-server: $schema=../schema/topology.schema.json

So ``.pre-commit-config.yaml``, GitHub workflows and Kubernetes manifests are never taken for
topologies, while a file named ``support-bot.yaml`` can opt in with the modeline editors use.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["DEFAULT_PATTERN", "DiscoveryError", "Found", "find_topologies", "has_modeline", "is_topology"]

#: The default pattern (a regular expression searched in the path, with ``/`` separators).
DEFAULT_PATTERN = r"(^|/)(topology|runnerconf)\.ya?ml$|\.topology\.ya?ml$"

_YAML_FILE = re.compile(r"\.ya?ml$")
_MODELINE = re.compile(r"^#\s*yaml-language-server\s*:\s*\$schema=(\S+)")
#: Only the leading comment block is read, and at most this much of it.
_HEAD_BYTES = 4096
#: Directories never entered: hidden ones (.git, .venv, .tox, ...) and package caches.
_SKIPPED_DIRS = {"node_modules", "__pycache__", "site-packages"}


class DiscoveryError(ValueError):
    """A directory given to search holds no topology file."""


@dataclass
class Found:
    """The files to check, in order, and how many named files were skipped as not topologies."""

    files: list[str] = field(default_factory=list)
    skipped: int = 0


def names_our_schema(url: str) -> bool:
    """Whether a modeline's ``$schema=`` names the runnerconf topology schema."""
    last = url.rstrip("/").rsplit("/", 1)[-1]
    return last == "topology.schema.json" or "runnerconf" in url.lower()


def has_modeline(path: str) -> bool:
    """Whether the file's leading comments carry the modeline naming our schema."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError:
        return False
    for raw in head.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("#"):
            return False  # the comment block before the document is over
        m = _MODELINE.match(line)
        if m and names_our_schema(m.group(1)):
            return True
    return False


def is_topology(path: str, pattern: re.Pattern[str]) -> bool:
    """Whether ``path`` (a YAML file) is a topology: by its name, or by its modeline."""
    posix = path.replace(os.sep, "/")
    if pattern.search(posix):
        return True
    return bool(_YAML_FILE.search(posix)) and has_modeline(path)


def find_topologies(paths: Iterable[str], pattern: str = DEFAULT_PATTERN, *, only_topologies: bool = False) -> Found:
    """The files to check for these command-line paths.

    A file is checked as given (``-`` is standard input); with ``only_topologies`` a file that is
    not a topology (see :func:`is_topology`) is skipped and counted. A directory is searched
    recursively, in sorted order, for topologies; one that holds none is an error, so that a typo
    in CI does not pass as "nothing to check".

    Raises:
        DiscoveryError: a directory without topologies, or a bad pattern.
    """
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise DiscoveryError(f"bad pattern {pattern!r}: {exc}") from exc
    found = Found()
    seen: set[str] = set()

    def add(path: str) -> None:
        key = path if path == "-" else os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            found.files.append(path)

    for path in paths:
        if path != "-" and os.path.isdir(path):
            inside = list(_search(path, compiled))
            if not inside:
                raise DiscoveryError(
                    f"no topology files in directory {path!r}: expected files matching {pattern!r} "
                    "or YAML files whose first comments name the schema "
                    "('# yaml-language-server: $schema=.../topology.schema.json')"
                )
            for f in inside:
                add(f)
        elif only_topologies and path != "-" and not is_topology(path, compiled):
            found.skipped += 1
        else:
            add(path)
    return found


def _search(root: str, pattern: re.Pattern[str]) -> Iterable[str]:
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS)
        for name in sorted(files):
            path = os.path.normpath(os.path.join(current, name))
            if is_topology(path, pattern):
                yield path
