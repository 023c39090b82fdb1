"""The schema of the registry (``gowa.db``), the one place its tables are made or changed.

To change a table, append a :class:`~gowa_py.storage.migrations.Migration` numbered one
higher than the last; never edit one that has shipped (docs/storage.md).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gowa_py.storage.migrations import Migration, columns, migrate

#: The tables as the registry made them before it had versions (sqlite-utils' DDL).
_BASELINE = (
    """CREATE TABLE IF NOT EXISTS "sessions" (
   "id" TEXT PRIMARY KEY,
   "created_at" REAL,
   "desired" TEXT,
   "status" TEXT,
   "status_at" REAL,
   "error" TEXT,
   "config" TEXT,
   "me" TEXT,
   "last_activity" REAL,
   "last_event_seq" INTEGER,
   "event_epoch" TEXT
)""",
    """CREATE TABLE IF NOT EXISTS "transitions" (
   "id" INTEGER PRIMARY KEY,
   "session_id" TEXT,
   "status" TEXT,
   "at" REAL,
   "error" TEXT
)""",
    """CREATE INDEX IF NOT EXISTS "idx_transitions_session_id_at"
    ON "transitions" ("session_id", "at")""",
    """CREATE TABLE IF NOT EXISTS "metrics" (
   "ts" REAL,
   "session_id" TEXT,
   "rss" INTEGER,
   "pss" INTEGER,
   "uss" INTEGER,
   "cpu" REAL
)""",
    """CREATE INDEX IF NOT EXISTS "idx_metrics_ts"
    ON "metrics" ("ts")""",
    """CREATE TABLE IF NOT EXISTS "message_counts" (
   "hour" INTEGER,
   "session_id" TEXT,
   "received" INTEGER,
   "sent" INTEGER,
   PRIMARY KEY ("hour", "session_id")
)""",
    """CREATE TABLE IF NOT EXISTS "connected_history" (
   "ts" REAL,
   "connected" INTEGER,
   "sessions" INTEGER
)""",
    """CREATE INDEX IF NOT EXISTS "idx_connected_history_ts"
    ON "connected_history" ("ts")""",
    """CREATE TABLE IF NOT EXISTS "api_keys" (
   "id" TEXT PRIMARY KEY,
   "name" TEXT,
   "sessions" TEXT,
   "scope" TEXT,
   "digest" TEXT,
   "created_at" REAL
)""",
)


def _baseline(conn: sqlite3.Connection) -> None:
    """Today's tables; an unversioned registry keeps its rows and gets what it lacks
    (releases before the event-log identity have no ``sessions.event_epoch``; the
    dashboard history and scoped-key tables came later still)."""
    for statement in _BASELINE:
        conn.execute(statement)
    if "event_epoch" not in columns(conn, "sessions"):
        conn.execute('ALTER TABLE "sessions" ADD COLUMN "event_epoch" TEXT')


MIGRATIONS = (Migration(1, "the registry as it was before versions", _baseline),)


def apply(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the open registry at ``path`` to the latest schema (see :func:`migrate`)."""
    return migrate(conn, MIGRATIONS, f"the registry {path}")
