"""Problems in the formats CI systems read: GitHub workflow annotations and SARIF 2.1.0.

Pure functions from :class:`~runnerconf.config.errors.Problem` lists to text or JSON data;
``runnerconf validate --format`` prints them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from runnerconf.config.errors import Problem

__all__ = ["SARIF_SCHEMA", "github_annotation", "sarif_log"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def github_annotation(p: Problem) -> str:
    """A problem as a GitHub Actions workflow command (``::error file=...,line=...::message``)."""

    def prop(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A").replace(":", "%3A").replace(",", "%2C")

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    where = f"{p.path}: " if p.path else ""
    return (
        f"::{p.severity} file={prop(p.file)},line={p.line},col={p.column},"
        f"title={prop('runnerconf ' + p.code)}::{data(where + p.message)}"
    )


def sarif_log(problems: Sequence[Problem], *, version: str, root: str | None = None) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run: a rule per problem code, a result per problem.

    File locations are relative to ``root`` (default: the working directory, which is the
    repository root in CI) when the file is inside it, else ``file://`` URIs; columns count
    Unicode code points, as runnerconf's do.
    """
    base = Path(root or os.getcwd()).resolve()
    codes = list(dict.fromkeys(p.code for p in problems))
    rules = [
        {
            "id": code,
            "name": "".join(part.capitalize() for part in code.split("-")),
            "shortDescription": {"text": f"runnerconf {code}"},
            "defaultConfiguration": {"level": "error"},
        }
        for code in codes
    ]
    results = [
        {
            "ruleId": p.code,
            "ruleIndex": codes.index(p.code),
            "level": "error" if p.severity == "error" else "warning",
            "message": {"text": f"{p.path}: {p.message}" if p.path else p.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(p.file, base)},
                        "region": {"startLine": max(p.line, 1), "startColumn": max(p.column, 1)},
                    }
                }
            ],
        }
        for p in problems
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "runnerconf", "version": version, "rules": rules}},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def _uri(file: str, base: Path) -> str:
    if file.startswith("<"):  # <stdin>, <string>: not a file; a relative reference still
        return quote(file.strip("<>"))
    path = Path(file).resolve()
    try:
        return quote(path.relative_to(base).as_posix())
    except ValueError:
        return path.as_uri()
