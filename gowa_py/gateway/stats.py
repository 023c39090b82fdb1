"""Counters behind the dashboard: messages per hour, connected sessions over time, and a
short in-memory history of each session's events.

They are fed by the supervisor's event stream (the same one webhooks and the WebSocket
see) and persisted in the registry, so the charts survive a gateway restart. Message
counts are buffered and written every few seconds: a busy session must not turn every
incoming message into a synchronous SQLite write on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

from gowa_py import protocol as p
from gowa_py.eventbody import EventBody
from gowa_py.storage.interfaces import RegistryStorage

log = logging.getLogger("gowa.gateway.stats")

FLUSH_INTERVAL_S = 5.0
PRUNE_INTERVAL_S = 600.0
MIN_HISTORY_HOURS = 48.0
RECENT_EVENTS = 300


def hour_of(ts: float) -> int:
    """Hours since the epoch: the key of the hourly counters."""
    return int(ts // 3600)


class DashboardStats:
    def __init__(self, registry: RegistryStorage, retention_hours: float) -> None:
        self._registry = registry
        self._history_s = max(retention_hours, MIN_HISTORY_HOURS) * 3600
        self._pending: dict[tuple[int, str], list[int]] = {}
        self._last_point: tuple[int, int] | None = None
        self._recent: dict[str, deque[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- feeding

    async def on_event(self, body: EventBody) -> None:
        """Supervisor listener: count messages, follow status changes, remember the event."""
        event = body.event
        if event.name == "message" and not event.payload.get("is_from_me"):
            self._count(event.session_id, event.timestamp, received=1)
        elif event.name == "message.sent":
            self._count(event.session_id, event.timestamp, sent=1)
        elif event.name == p.SESSION_STATUS:
            self.record_connected()
        recent = self._recent.setdefault(event.session_id, deque(maxlen=RECENT_EVENTS))
        recent.append(body.json)

    def _count(self, session_id: str, ts: float, received: int = 0, sent: int = 0) -> None:
        slot = self._pending.setdefault((hour_of(ts), session_id), [0, 0])
        slot[0] += received
        slot[1] += sent

    def record_connected(self) -> None:
        """Store the connected-session count when it (or the session count) changed."""
        records = self._registry.all()
        point = (sum(r.status == p.SessionState.CONNECTED for r in records), len(records))
        if point != self._last_point:
            self._registry.add_connected_point(time.time(), *point)
            self._last_point = point

    def forget(self, session_id: str) -> None:
        self._recent.pop(session_id, None)

    # --------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.record_connected()
        self._task = asyncio.create_task(self._loop(), name="dashboard-stats")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.flush()

    async def _loop(self) -> None:
        last_prune = 0.0
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                self.flush()
                # Catches deletions and start-up resets, which publish no status event.
                self.record_connected()
                now = time.time()
                if now - last_prune > PRUNE_INTERVAL_S:
                    self._registry.prune_dashboard_history(now - self._history_s)
                    last_prune = now
            except Exception:
                log.exception("writing dashboard counters failed")

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        self._registry.add_message_counts({k: (v[0], v[1]) for k, v in pending.items()})

    # ---------------------------------------------------------------- reading

    def message_counts(self, since: float) -> list[dict[str, Any]]:
        """Hourly rows ``{hour, session_id, received, sent}`` from ``since``, pending included."""
        first = hour_of(since)
        merged: dict[tuple[int, str], list[int]] = {}
        for row in self._registry.message_counts_since(first):
            merged[(row["hour"], row["session_id"])] = [row["received"], row["sent"]]
        for key, (received, sent) in self._pending.items():
            if key[0] >= first:
                slot = merged.setdefault(key, [0, 0])
                slot[0] += received
                slot[1] += sent
        return [
            {"hour": hour, "session_id": sid, "received": r, "sent": s}
            for (hour, sid), (r, s) in sorted(merged.items())
        ]

    def messages_per_hour(self, since: float, until: float) -> list[dict[str, int]]:
        """Every hour from ``since`` to ``until`` (zeros included), summed over sessions."""
        totals = {h: [0, 0] for h in range(hour_of(since), hour_of(until) + 1)}
        for row in self.message_counts(since):
            slot = totals.setdefault(row["hour"], [0, 0])
            slot[0] += row["received"]
            slot[1] += row["sent"]
        return [
            {"ts": hour * 3600, "received": r, "sent": s} for hour, (r, s) in sorted(totals.items())
        ]

    def totals_since(self, since: float) -> tuple[int, int]:
        """(received, sent) from the hour containing ``since`` on."""
        rows = self.message_counts(since)
        return sum(r["received"] for r in rows), sum(r["sent"] for r in rows)

    def connected_series(self, since: float) -> list[dict[str, Any]]:
        return self._registry.connected_since(since)

    def recent_events(self, session_id: str, limit: int = RECENT_EVENTS) -> list[dict[str, Any]]:
        events = list(self._recent.get(session_id, ()))
        return events[-limit:] if limit > 0 else []
