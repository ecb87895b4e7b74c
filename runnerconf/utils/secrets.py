"""Keeping secrets out of logs and output: passwords in URLs are shown as ``***``."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

__all__ = ["SECRET_KEY", "redact", "redact_secrets", "redact_text"]

_SECRET_KEYS = {"password", "pass", "pwd", "secret", "token"}
#: Keys whose values are secrets wherever they stand (params, env of a command, ...).
SECRET_KEY = re.compile(r"(pass(word|wd)?|pwd|secret|token|api[_-]?key|credentials?|private[_-]?key)$", re.IGNORECASE)
_WHOLE_PLACEHOLDER = re.compile(r"^\$\{[^{}]*\}$")
# A URL with a user-info part (the last '@' before the host ends it: a password may hold '@').
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s:/@'\"]*)(?::[^\s'\"]*)?@(?=[^\s@'\"]*(?:[\s'\"]|$))")
_QUERY_SECRET = re.compile(r"(?P<key>[?&](?:password|pass|pwd|secret|token)=)[^&\s'\"]*", re.IGNORECASE)


def redact(url: str) -> str:
    """The URL without its secrets: the user-info's password (even one holding '@') and a
    ``password=`` (or ``token=``, ``secret=``) in the query."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")  # the last '@' ends the user-info
        user, sep, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if sep else f"***@{host}"
    query = parts.query
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True) if query else []
    if netloc == parts.netloc and not any(k.lower() in _SECRET_KEYS for k, _ in pairs):
        return url  # nothing to hide: the text as written (a `${VAR:?msg}` is not rebuilt)
    if any(k.lower() in _SECRET_KEYS for k, _ in pairs):
        query = "&".join(f"{k}={'***' if k.lower() in _SECRET_KEYS else v}" for k, v in pairs)
    scheme = f"{parts.scheme}://" if parts.scheme else ""
    return f"{scheme}{netloc}{parts.path}{'?' + query if query else ''}{'#' + parts.fragment if parts.fragment else ''}"


def redact_text(text: str) -> str:
    """``text`` with every URL's password and every secret query parameter replaced by ``***``."""
    if "://" not in text and "=" not in text:
        return text

    def userinfo(m: re.Match[str]) -> str:
        user = m.group("user")
        return f"{m.group('scheme')}{user}:***@" if ":" in m.group(0)[len(m.group("scheme")) :] else f"{m.group('scheme')}***@"

    text = _USERINFO.sub(userinfo, text)
    return _QUERY_SECRET.sub(lambda m: m.group("key") + "***", text)


def redact_secrets(data: Any) -> Any:
    """A copy of plain data (dicts, lists, scalars) with the value of every key that names a
    secret (``password``, ``api_key``, ``OPENAI_API_KEY``, ``token``...) shown as ``***``; a value
    that is still a bare ``${VAR}`` (not interpolated) is kept, since it reveals nothing."""
    if isinstance(data, dict):
        return {k: _hidden(v) if isinstance(k, str) and SECRET_KEY.search(k) else redact_secrets(v) for k, v in data.items()}
    if isinstance(data, list):
        return [redact_secrets(v) for v in data]
    return data


def _hidden(value: Any) -> Any:
    """A secret's value shown: ``***`` for each string (a bare ``${VAR}`` kept), lists too."""
    if isinstance(value, str):
        return value if not value or _WHOLE_PLACEHOLDER.match(value) else "***"
    if isinstance(value, list):
        return [_hidden(v) for v in value]
    return redact_secrets(value)
