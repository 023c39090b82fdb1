"""Timestamps as GoWA writes them (RFC 3339, UTC, seconds)."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(unix: float) -> str:
    """whatsmeow hands out seconds or milliseconds depending on the path; accept both."""
    if unix > 1e12:
        unix /= 1000
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
