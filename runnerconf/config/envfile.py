"""``--env-file`` files: ``KEY=VALUE`` lines, as docker compose reads them."""

from __future__ import annotations

import re
from pathlib import Path

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
    text = Path(path).read_text(encoding="utf-8")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            raise EnvFileError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        key, value = m.group(1), m.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace("\\n", "\n").replace("\\t", "\t").replace('\\"', '"').replace("\\\\", "\\")
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].rstrip()
        values[key] = value
    return values
