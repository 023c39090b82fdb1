"""GoWA's webhook JSON of an event, built once per event for every listener."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import msgspec

from gowa_py import protocol as p
from gowa_py.registry import SessionRecord

_encoder = msgspec.json.Encoder()


def iso_timestamp(ts: float) -> str:
    """An event's time as GoWA writes it: UTC, milliseconds, ``Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventBody:
    """One event as GoWA's webhooks carry it: ``{"id", "event", "session_id",
    "device_id", "timestamp", "payload"}``.

    The supervisor builds it once per event, with the session's record as it is when the
    event is dispatched; the webhooks, the WebSocket and the dashboard's history share it
    (and its encoding) instead of each looking the session up again. ``id`` is the
    event's stable id (the same when an event is replayed), so receivers can drop
    duplicates of an at-least-once delivery.
    """

    def __init__(self, event: p.Event, record: SessionRecord | None) -> None:
        self.event = event
        self.record = record
        self.json: dict[str, Any] = {
            "id": event.id,
            "event": event.name,
            "session_id": event.session_id,
            "device_id": record.me.jid if record is not None and record.me else "",
            "timestamp": iso_timestamp(event.timestamp),
            "payload": event.payload,
        }
        self._stamped: tuple[str, bytes] | None = None

    @cached_property
    def encoded(self) -> bytes:
        """The JSON as bytes, encoded at most once (a webhook body, a WebSocket message)."""
        return _encoder.encode(self.json)

    def stamped(self, node: str) -> bytes:
        """The JSON with the ``node`` that ran the event added last (a cluster's event
        stream), spliced onto :attr:`encoded` rather than encoded again; kept, as the
        stream and the relay to the other nodes both send it."""
        if self._stamped is None or self._stamped[0] != node:
            data = self.encoded[:-1] + b',"node":' + _encoder.encode(node) + b"}"
            self._stamped = (node, data)
        return self._stamped[1]
