"""Timestamps as GoWA writes them (RFC 3339, UTC, seconds)."""

from __future__ import annotations

import time


def rfc3339(unix: float) -> str:
    """whatsmeow hands out seconds or milliseconds depending on the path; accept both.

    Formatted by hand: ``strftime`` goes through the C library, which re-reads the time
    zone (a ``stat`` of /etc/localtime) on every call, a visible part of a sending
    worker's Python time (docs/benchmarks.md, "API latency").
    """
    if unix > 1e12:
        unix /= 1000
    t = time.gmtime(unix)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
        f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}Z"
    )
