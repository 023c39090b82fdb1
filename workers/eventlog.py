"""The worker's durable event log: events are written here before they are published.

A gateway that was down (or missed a publish) asks for everything after the last
sequence number it saw, so incoming messages and receipts are never lost between the
WhatsApp socket and the gateway. ``seq`` is the sequence, one above the highest in the
writing transaction (so a rolled-back event leaves no gap, and the highest is never
pruned); the id never changes, so a replayed event can be recognised as a duplicate.

The log also has an identity, the epoch, minted with it: sequence numbers only mean
something within one log. A ``chats.db`` deleted or restored from a backup starts
numbering again (or anew), and the gateway, which keeps the last sequence it applied per
session, must notice that to deliver the new log's events instead of taking them for
ones it already has.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from gowa_py import protocol as p
from workers.chatsdb import ChatsDb


class EventLog:
    """Append-only event table in the session's database (thread-safe)."""

    def __init__(self, db: ChatsDb, session_id: str, retention: int = 10_000) -> None:
        self.session_id = session_id
        self._retention = max(1, retention)  # the highest seq is kept: it numbers the next
        self._chats = db
        self._lock = db.lock
        self._db = db.connection
        with self._chats.transaction() as conn:
            row = conn.execute("SELECT epoch FROM event_log").fetchone()
            if row is None:
                row = (uuid.uuid4().hex,)
                conn.execute("INSERT INTO event_log (epoch) VALUES (?)", row)
            self.epoch: str = row[0]
            #: The last sequence number when this worker opened the log: every event after
            #: it was written by this process (see :meth:`identity`).
            self.start_seq: int = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM events"
            ).fetchone()[0]
        self._prune()

    def identity(self) -> p.EventLogIdentity:
        """What the gateway needs to tell this log from the one it last read."""
        return p.EventLogIdentity(epoch=self.epoch, start_seq=self.start_seq)

    def append(
        self, name: str, payload: dict[str, Any], dedupe: str | None = None
    ) -> p.Event | None:
        """Record an event; None when ``dedupe`` was seen before (whatsmeow re-delivers
        messages and receipts after a reconnect, and receivers should get them once)."""
        event_id = uuid.uuid4().hex
        now = time.time()
        with self._chats.transaction() as db:
            # Checked first: a refused insert would abort the PostgreSQL transaction the
            # message it belongs to is written in.
            if (
                dedupe is not None
                and db.execute("SELECT 1 FROM events WHERE dedupe = ?", (dedupe,)).fetchone()
            ):
                return None
            seq = int(
                db.execute(
                    "INSERT INTO events (seq, id, name, timestamp, payload, dedupe) "
                    "VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM events), ?, ?, ?, ?, ?) "
                    "RETURNING seq",
                    (event_id, name, now, json.dumps(payload, separators=(",", ":")), dedupe),
                ).fetchone()[0]
            )
        return p.Event(
            id=event_id,
            session_id=self.session_id,
            name=name,
            timestamp=now,
            payload=payload,
            seq=seq,
            epoch=self.epoch,
        )

    def has_message(self, message_id: str) -> bool:
        """Whether an incoming message with this id was recorded (under any chat)."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM events WHERE dedupe LIKE ? LIMIT 1",
                (f"message%:{message_id}",),
            ).fetchone()
        return row is not None

    def since(self, after_seq: int, limit: int) -> list[p.Event]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, name, timestamp, payload FROM events WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [
            p.Event(
                id=row[1],
                session_id=self.session_id,
                name=row[2],
                timestamp=row[3],
                payload=json.loads(row[4]),
                seq=row[0],
                epoch=self.epoch,
            )
            for row in rows
        ]

    def _prune(self) -> None:
        with self._lock:
            self._db.execute(
                "DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?",
                (self._retention,),
            )
