"""``git:REV:PATH``: a topology as it was at a revision of the repository, read with ``git show``."""

from __future__ import annotations

import os
import subprocess

__all__ = ["GitSourceError", "is_git_source", "read_git_source"]

PREFIX = "git:"


class GitSourceError(ValueError):
    """The revision or the path does not exist, or this is not a git work tree."""


def is_git_source(text: str) -> bool:
    return text.startswith(PREFIX) and ":" in text[len(PREFIX) :]


def read_git_source(text: str, cwd: str | None = None) -> str:
    """The text of ``PATH`` at ``REV`` (``git:REV:PATH``; PATH relative to the current directory,
    as ``git show REV:./PATH`` reads it).

    Raises:
        GitSourceError: with git's own message.
    """
    rev, _, path = text[len(PREFIX) :].partition(":")
    if not rev or not path:
        raise GitSourceError(f"{text!r}: expected git:REV:PATH, e.g. git:HEAD~1:bot.yaml")
    if rev.startswith("-"):
        raise GitSourceError(f"{text!r}: a revision cannot start with '-'")
    relative = os.path.relpath(path, cwd) if os.path.isabs(path) else path
    spec = f"{rev}:{relative if relative.startswith('./') else './' + relative}"
    try:
        result = subprocess.run(["git", "show", "--end-of-options", spec], cwd=cwd, capture_output=True, timeout=30)
    except FileNotFoundError:
        raise GitSourceError(f"{text!r}: git is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitSourceError(f"{text!r}: git show did not answer within 30 s") from None
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitSourceError(f"{text!r}: {message[-1] if message else 'git show failed'}")
    try:
        return result.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise GitSourceError(f"{text!r}: not UTF-8 text") from None
