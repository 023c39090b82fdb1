"""Host names as clients send them (``Host`` header) and as ``allowed_hosts`` lists them."""

from __future__ import annotations

from urllib.parse import urlsplit


def split_host(value: str) -> tuple[str, int | None] | None:
    """``name[:port]`` (IPv6 in brackets) -> (lower-case name, port), None if malformed."""
    try:
        parts = urlsplit("//" + value)
        name, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not name or parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    return name.rstrip("."), port


def parse_allowed_hosts(value: str | None) -> list[tuple[str, int | None]]:
    """``allowed_hosts``: comma-separated ``name[:port]``; raises ValueError on a bad one."""
    entries = []
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        parsed = split_host(item)
        if parsed is None:
            raise ValueError(f"{item!r} is not a host name or address with an optional :port")
        entries.append(parsed)
    return entries
