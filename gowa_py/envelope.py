"""GoWA's webhook envelope, shared by the live event stream and the webhooks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gowa_py import protocol as p


def envelope(event: p.Event, device_id: str) -> dict[str, Any]:
    """``{"event", "session_id", "device_id", "timestamp", "payload"}`` plus ``id``.

    ``id`` is the event's stable id (the same when an event is replayed), so receivers
    can drop duplicates of an at-least-once delivery.
    """
    return {
        "id": event.id,
        "event": event.name,
        "session_id": event.session_id,
        "device_id": device_id,
        "timestamp": datetime.fromtimestamp(event.timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "payload": event.payload,
    }
