"""Making visible the one loss the worker cannot prevent.

whatsmeow commits a message's decryption (the Signal ratchet moves on) before it hands
the message to us, and neonize does not enable whatsmeow's decrypted-event buffer that
would keep the plaintext for a second try. A worker killed in that instant has lost the
message: the server delivers it again, but whatsmeow can no longer decrypt it ("old
counter") and drops it, logging "Ignoring message <id> ... old counter". When that
message never reaches our event log, a durable ``message.lost`` event names it, so the
loss reaches webhooks and the dashboard instead of passing silently.

A refused copy is only a suspect at first: after a dropped connection the server's second
copy can be refused while the first is still being handled, which is no loss. Suspects
are kept in the session's database and judged after a grace period, so a worker that is killed
again meanwhile judges them after its restart.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from workers.chatsdb import ChatsDb

if TYPE_CHECKING:
    from gowa_py.storage.interfaces import EventStorage, SuspectStorage

IGNORED = re.compile(r"Ignoring message (\S+) from (\S+) in (\S+): (.*old counter.*)")
GRACE_S = 5.0


class LostSuspects:
    """The session's ``lost_suspects`` table (a ``SuspectStorage``)."""

    def __init__(self, db: ChatsDb) -> None:
        self._lock = db.lock
        self._db = db.connection

    def add(self, message_id: str, sender: str, chat: str, reason: str, seen_at: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO lost_suspects VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (message_id, sender, chat, reason, seen_at),
            )

    def due(self, cutoff: float) -> list[tuple[str, str, str, str]]:
        """Suspects seen at ``cutoff`` or before: (message id, sender, chat, reason)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT message_id, sender, chat, reason FROM lost_suspects WHERE seen_at <= ?",
                (cutoff,),
            ).fetchall()
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    def remove(self, message_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM lost_suspects WHERE message_id = ?", (message_id,))


class LostMessageReporter(logging.Handler):
    """Attach to the ``whatsmeow`` logger; call :meth:`judge` now and then.

    The table is read only while a suspect may be waiting in it: once at start (an
    earlier run's), then after this worker added one, until every suspect added was
    judged. An idle session's worker so sends no statement every few seconds, which on
    PostgreSQL behind PgBouncer would take a server connection from another session's
    pool each time (docs/storage.md#pgbouncer).
    """

    def __init__(
        self,
        suspects: SuspectStorage,
        events: EventStorage,
        emit: Callable[..., object],
        grace_s: float = GRACE_S,
    ) -> None:
        super().__init__(logging.WARNING)
        self._suspects = suspects
        self._events = events
        self._emit = emit
        self._grace_s = grace_s
        #: When the newest suspect not yet judged was seen, None when there is none; an
        #: earlier run's may be as recent as now.
        self._newest: float | None = time.time()
        self._newest_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            match = IGNORED.search(record.getMessage())
        except Exception:
            return
        if match is None:
            return
        message_id, sender, chat, reason = match.groups()
        seen_at = time.time()
        self._suspects.add(message_id, sender, chat, reason, seen_at)
        with self._newest_lock:
            self._newest = max(self._newest or seen_at, seen_at)

    def judge(self, now: float | None = None) -> None:
        """Report suspects older than the grace period whose message never arrived."""
        with self._newest_lock:
            newest = self._newest
        if newest is None:
            return
        cutoff = (time.time() if now is None else now) - self._grace_s
        for message_id, sender, chat, reason in self._suspects.due(cutoff):
            if not self._events.has_message(message_id):
                payload = {
                    "id": message_id,
                    "from": sender,
                    "chat_id": chat,
                    "reason": "decrypted by a worker that died before recording it; "
                    f"whatsmeow cannot decrypt it again ({reason})",
                }
                self._emit("message.lost", payload, dedupe=f"lost:{message_id}")
            self._suspects.remove(message_id)
        with self._newest_lock:
            if self._newest == newest and newest <= cutoff:
                self._newest = None  # all judged, and none added meanwhile
