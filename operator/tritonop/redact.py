"""Secrets that ride in URIs (userinfo, pre-signed query strings) never reach status, Events or logs."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

REDACTED = "REDACTED"


def redact_uri(uri: str) -> str:
    """``uri`` with its userinfo and query string replaced: s3://REDACTED@bucket/p?REDACTED."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = REDACTED if parts.query else ""
    fragment = REDACTED if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
