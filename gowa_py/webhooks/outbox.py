"""The webhook outbox of one session, a table in its ``chats.db`` (or its PostgreSQL schema).

A delivery row is written before the gateway counts the event as applied, and it keeps
the exact body that is signed and sent, so a retry after a crash sends the same bytes.
``UNIQUE(event_id, url)`` makes enqueueing idempotent when an event is replayed.

The gateway's own ``webhook_secret`` is never written here: the file is the session's
(its worker reads and writes it), and that secret signs every session's deliveries. A
row signed with it keeps :data:`GLOBAL_SECRET` and the deliverer signs it at send time.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from typing import Any

from gowa_py.storage.sql import Dialect, Sql

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
STATUSES = (PENDING, DELIVERED, DEAD)
#: The ``secret`` of a row signed with the gateway's webhook_secret (known at send time).
GLOBAL_SECRET = ""


@dataclass(frozen=True)
class Delivery:
    id: str
    event_id: str
    event: str
    url: str
    secret: str
    body: bytes
    status: str
    attempts: int
    next_attempt_at: float
    created_at: float
    delivered_at: float | None
    last_status: int | None
    last_error: str | None

    def public(self) -> dict[str, Any]:
        """What the deliveries API shows (never the secret)."""
        return {
            "id": self.id,
            "event_id": self.event_id,
            "event": self.event,
            "url": self.url,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at if self.status == PENDING else None,
            "created_at": self.created_at,
            "delivered_at": self.delivered_at,
            "last_status": self.last_status,
            "last_error": self.last_error,
        }


_COLUMNS = ", ".join(Delivery.__dataclass_fields__)
#: The table's name in a session's own database (qualified by its schema on PostgreSQL).
TABLE = "webhook_deliveries"


_UNKNOWN = -1.0  # not a timestamp: next_due_at must ask the database


class Outbox:
    """One session's webhook deliveries (``webhook_deliveries`` in its ``chats.db``).

    Only the gateway writes this table, and only through this class; so the earliest
    pending attempt (:meth:`next_due_at`, which the delivery loop asks of every session
    every second) is kept in memory and forgotten by every write. With 100 idle
    sessions that is 100 SQLite queries a second fewer.
    """

    def __init__(self, db: Sql, dialect: Dialect, table: str, close: Callable[[], None]) -> None:
        """``table`` names the session's ``webhook_deliveries``; ``close`` releases the
        connection (the backend's factory opened it and made the table)."""
        self._lock = threading.Lock()
        self._next_due: float | None = _UNKNOWN
        self._db = db
        self._dialect = dialect
        self._t = table
        self._close = close

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """The lock, for a write that may change what is pending: the cached next due
        time is forgotten with it, so no write can leave it stale."""
        with self._lock:
            self._next_due = _UNKNOWN
            yield

    def enqueue(
        self, event_id: str, event: str, targets: list[tuple[str, str]], body: bytes
    ) -> int:
        """Add one pending delivery per (url, secret); returns how many were new."""
        now = time.time()
        rows = [
            (uuid.uuid4().hex, event_id, event, url, secret, body, PENDING, now, now)
            for url, secret in targets
        ]
        with self._writing():
            return self._db.executemany(
                f"INSERT INTO {self._t} "
                "(id, event_id, event, url, secret, body, status, next_attempt_at, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            ).rowcount

    def due(self, now: float, limit: int, exclude: set[str]) -> list[Delivery]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM {self._t} "
                "WHERE status = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, created_at "
                "LIMIT ?",
                (PENDING, now, limit + len(exclude)),
            ).fetchall()
        return [d for d in (Delivery(*row) for row in rows) if d.id not in exclude][:limit]

    def next_due_at(self) -> float | None:
        """When the earliest pending delivery is due (None: nothing pending)."""
        with self._lock:
            if self._next_due != _UNKNOWN:
                return self._next_due
            row = self._db.execute(
                f"SELECT MIN(next_attempt_at) FROM {self._t} WHERE status = ?",
                (PENDING,),
            ).fetchone()
            self._next_due = row[0] if row else None
            return self._next_due

    def mark_delivered(self, delivery_id: str, status_code: int) -> None:
        with self._writing():
            self._db.execute(
                f"UPDATE {self._t} SET status = ?, attempts = attempts + 1, "
                "delivered_at = ?, last_status = ?, last_error = NULL WHERE id = ?",
                (DELIVERED, time.time(), status_code, delivery_id),
            )

    def mark_failed(
        self, delivery_id: str, status_code: int | None, error: str, retry_at: float | None
    ) -> None:
        """Record a failed attempt; ``retry_at`` None means the retry cap is reached."""
        with self._writing():
            self._db.execute(
                f"UPDATE {self._t} SET status = ?, attempts = attempts + 1, "
                "next_attempt_at = COALESCE(?, next_attempt_at), last_status = ?, "
                "last_error = ? WHERE id = ?",
                (
                    PENDING if retry_at is not None else DEAD,
                    retry_at,
                    status_code,
                    error[:500],
                    delivery_id,
                ),
            )

    def hurry(self, url: str, now: float) -> None:
        """The receiver answered again: everything waiting for it is due now."""
        with self._writing():
            self._db.execute(
                f"UPDATE {self._t} SET next_attempt_at = ? "
                "WHERE status = ? AND url = ? AND next_attempt_at > ?",
                (now, PENDING, url, now),
            )

    def get(self, delivery_id: str) -> Delivery | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM {self._t} WHERE id = ?", (delivery_id,)
            ).fetchone()
        return Delivery(*row) if row else None

    def redeliver(self, delivery_id: str) -> bool:
        with self._writing():
            cursor = self._db.execute(
                f"UPDATE {self._t} SET status = ?, attempts = 0, next_attempt_at = ?, "
                "last_error = NULL WHERE id = ?",
                (PENDING, time.time(), delivery_id),
            )
        return cursor.rowcount == 1

    def list(self, status: str | None, limit: int, before: float | None = None) -> list[Delivery]:
        query = f"SELECT {_COLUMNS} FROM {self._t} WHERE 1 = 1"
        args: list[Any] = []
        if status:
            query += " AND status = ?"
            args.append(status)
        if before is not None:
            query += " AND created_at < ?"
            args.append(before)
        query += " ORDER BY created_at DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [Delivery(*row) for row in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT status, COUNT(*) FROM {self._t} GROUP BY status"
            ).fetchall()
        return {status: 0 for status in STATUSES} | dict(rows)

    def prune_delivered(self, older_than: float) -> None:
        with self._lock:
            self._db.execute(
                f"DELETE FROM {self._t} WHERE status = ? AND delivered_at < ?",
                (DELIVERED, older_than),
            )

    def forget_secret(self, secret: str) -> None:
        """Replace copies of ``secret`` that older versions stored with the reference,
        leaving no old value readable where the backend can see to it (``Dialect``)."""
        with self._lock:
            for statement in self._dialect.before_scrub:
                self._db.execute(statement)
            cursor = self._db.execute(
                f"UPDATE {self._t} SET secret = ? WHERE secret = ?", (GLOBAL_SECRET, secret)
            )
            if cursor.rowcount:
                for statement in self._dialect.after_scrub:
                    self._db.execute(statement)

    def pending(self) -> Sequence[Delivery]:
        """Every delivery still to be made."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM {self._t} WHERE status = ?", (PENDING,)
            ).fetchall()
        return [Delivery(*row) for row in rows]

    def adopt(self, deliveries: Iterable[Delivery]) -> int:
        """Take deliveries over from another outbox (one already here is kept); how many
        were new."""
        marks = ", ".join("?" * len(Delivery.__dataclass_fields__))
        with self._writing():
            return self._db.executemany(
                f"INSERT INTO {self._t} ({_COLUMNS}) VALUES ({marks}) ON CONFLICT DO NOTHING",
                [astuple(delivery) for delivery in deliveries],
            ).rowcount

    def close(self) -> None:
        with self._lock:
            self._close()
