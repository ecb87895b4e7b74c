"""A topology's revision: a hash of its normalised form, and that form as it travels to runners.

The normalised form is what ``runnerconf config`` prints (defaults filled in, variables,
overlays and ``--set`` applied), as canonical JSON. The revision id is the first 12 hex digits
of its SHA-256, so two files that mean the same topology (other comments, key order, a default
written out or not) have the same revision.

What travels to runners (``runnerconf apply``) leaves the bus's secrets behind: the bus cannot
change under a running runner anyway, so the bus is represented by a fingerprint (a hash of the
whole bus section, secrets included), which is part of the revision id. Worker parameters do
travel: use a signed bus over TLS (see the README).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from typing import Any

from runnerconf.config.models import Topology
from runnerconf.utils.secrets import redact

__all__ = ["Revision", "bus_fingerprint", "canonical", "document", "git_commit", "make_revision", "revision_id", "worker_fingerprints"]


def document(topology: Topology) -> dict[str, Any]:
    """The topology as plain data in the layout the file uses (``runner``+``workers`` or
    ``runners``), defaults filled in, nothing hidden: a valid topology itself."""
    # warnings=False: under --no-interpolate a `${VAR}` stands where a number is expected.
    data: dict[str, Any] = topology.model_dump(mode="json", by_alias=True, warnings=False)
    for key in ("runner", "workers") if topology.runners is not None else ("runners",):
        data.pop(key, None)
    bus = data.get("bus")
    if isinstance(bus, dict) and bus.get("type") == "redis":
        bus["channel"] = topology.bus.channel_name  # type: ignore[union-attr]  (the default, once known)
    return data


def canonical(data: Any) -> str:
    """One text for one value: sorted keys, no spaces."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def bus_fingerprint(topology: Topology) -> str:
    """16 hex digits that change whenever anything of the bus section does (its secrets too)."""
    return hashlib.sha256(canonical(document(topology).get("bus")).encode()).hexdigest()[:16]


def revision_id(content: str, bus: str) -> str:
    """The revision of shared ``content`` and a bus fingerprint."""
    return hashlib.sha256(f"{bus}\n{content}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Revision:
    """A topology's revision.

    Attributes:
        id: 12 hex digits (see :func:`revision_id`).
        content: The canonical JSON of the topology, bus secrets left out (what ``apply`` sends).
        bus: The bus fingerprint.
        git: The commit of the file's work tree (``abc1234``, ``+dirty`` when the file differs
            from it), or None outside git.
    """

    id: str
    content: str
    bus: str
    git: str | None = None

    @property
    def label(self) -> str:
        return f"{self.id} (git {self.git})" if self.git else self.id

    def verify(self) -> bool:
        """Whether ``id`` is the hash of ``content`` and ``bus`` (a revision received from a peer)."""
        return revision_id(self.content, self.bus) == self.id


def shareable(topology: Topology) -> dict[str, Any]:
    """:func:`document` without the bus's secrets (URL password, ``secret``, ``secret_file``)."""
    data = document(topology)
    bus = data.get("bus")
    if isinstance(bus, dict) and bus.get("type") == "redis":
        bus["url"] = redact(bus["url"])
        for key in ("secret", "secret_file"):
            bus.pop(key, None)
    return data


def make_revision(topology: Topology, path: str | None = None) -> Revision:
    """The revision of ``topology`` (with the git commit of ``path``'s work tree, if any)."""
    content = canonical(shareable(topology))
    bus = bus_fingerprint(topology)
    return Revision(revision_id(content, bus), content, bus, git_commit(path) if path else None)


def git_commit(path: str) -> str | None:
    """``HEAD``'s short commit for the work tree holding ``path`` (``+dirty`` if the file has
    changes not committed), or None when it is not in one or git is missing."""
    if path == "-" or not os.path.exists(path):
        return None
    where = os.path.dirname(os.path.abspath(path))
    try:
        head = subprocess.run(["git", "-C", where, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", where, "status", "--porcelain", "--", os.path.abspath(path)], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()
    return f"{commit}+dirty" if status.stdout.strip() else commit


def worker_fingerprints(topology: Topology) -> dict[str, str]:
    """12 hex digits per worker that change whenever its configuration does."""
    data = document(topology)
    sections = data["runners"] if data.get("runners") is not None else [{"workers": data.get("workers") or []}]
    return {
        w["name"]: hashlib.sha256(canonical(w).encode()).hexdigest()[:12] for section in sections for w in section.get("workers") or []
    }
