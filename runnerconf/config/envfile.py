"""``--env-file`` files: ``KEY=VALUE`` lines, as docker compose reads them."""

from __future__ import annotations

import re
from pathlib import Path

from runnerconf.config.errors import TopologyError
from runnerconf.config.files import display_name, read_topology_bytes

__all__ = ["EnvFileError", "read_env_file"]

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


class EnvFileError(ValueError):
    """A line of an env file is not ``KEY=VALUE``."""


def read_env_file(path: str | Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines; ``#`` comments, blank lines, ``export`` and quotes are allowed.

    Single-quoted values are literal; double-quoted ones understand ``\\n``, ``\\t``, ``\\"``;
    unquoted ones end at `` #`` (a comment).
    """
    values: dict[str, str] = {}
    name = display_name(path)
    try:
        data = read_topology_bytes(path, name)
    except TopologyError as exc:
        raise EnvFileError(f"{name}: {exc.problems[0].message}") from exc
    if b"\0" in data:
        line = data.count(b"\n", 0, data.index(b"\0")) + 1
        raise EnvFileError(f"{name}:{line}: a NUL byte: this is not a text file of KEY=VALUE lines")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise EnvFileError(f"{name}:{line}: byte {data[exc.start]:#04x} is not UTF-8 text") from exc
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            shown = raw if len(raw) <= 60 else raw[:57] + "..."
            raise EnvFileError(f"{name}:{number}: expected KEY=VALUE, got {shown!r}")
        key, value = m.group(1), m.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace("\\n", "\n").replace("\\t", "\t").replace('\\"', '"').replace("\\\\", "\\")
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].rstrip()
        values[key] = value
    return values
