"""Keeping secrets out of logs and output: passwords in URLs are shown as ``***``."""

from __future__ import annotations

import re
import urllib.parse

__all__ = ["redact", "redact_text"]

_SECRET_KEYS = {"password", "pass", "pwd", "secret", "token"}
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
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
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
