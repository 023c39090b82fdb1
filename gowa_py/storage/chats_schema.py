"""The schema of a session's ``chats.db``, the one place its tables are made or changed.

The file holds what four parts keep for one session: the worker's chat store (chats,
messages, reactions), event log (events, event_log), lost-message suspects, and the
gateway's webhook outbox (webhook_deliveries). Both processes open it, so this module is
in ``gowa_py``, which the worker may import and the gateway must not leave for
``workers``. Whichever opens the file first migrates it.

To change a table, append a :class:`~gowa_py.storage.migrations.Migration` numbered one
higher than the last; never edit one that has shipped (docs/storage.md).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gowa_py.storage.migrations import Migration, columns, migrate

#: The tables as their owners made them before the file had versions.
_BASELINE = (
    # chat store
    """CREATE TABLE IF NOT EXISTS chats (
    jid TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    last_message_time REAL,
    ephemeral_expiration INTEGER NOT NULL DEFAULT 0,
    archived INTEGER NOT NULL DEFAULT 0,
    pinned INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS messages (
    id TEXT NOT NULL,
    chat_jid TEXT NOT NULL,
    sender_jid TEXT NOT NULL DEFAULT '',
    sender_name TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT '',
    timestamp REAL NOT NULL,
    is_from_me INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT '',
    media_type TEXT NOT NULL DEFAULT '',
    mimetype TEXT NOT NULL DEFAULT '',
    filename TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    file_length INTEGER NOT NULL DEFAULT 0,
    media_path TEXT NOT NULL DEFAULT '',
    edited INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0,
    starred INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    raw BLOB,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (chat_jid, id)
)""",
    "CREATE INDEX IF NOT EXISTS messages_by_time ON messages (chat_jid, timestamp)",
    "CREATE INDEX IF NOT EXISTS messages_by_id ON messages (id)",
    """CREATE TABLE IF NOT EXISTS reactions (
    chat_jid TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sender_jid TEXT NOT NULL,
    emoji TEXT NOT NULL,
    timestamp REAL NOT NULL,
    PRIMARY KEY (chat_jid, message_id, sender_jid)
)""",
    # event log
    """CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    timestamp REAL NOT NULL,
    payload TEXT NOT NULL,
    dedupe TEXT UNIQUE
)""",
    """CREATE TABLE IF NOT EXISTS event_log (
    epoch TEXT NOT NULL
)""",
    # lost-message reporter
    """CREATE TABLE IF NOT EXISTS lost_suspects (
    message_id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    chat TEXT NOT NULL,
    reason TEXT NOT NULL,
    seen_at REAL NOT NULL
)""",
    # webhook outbox
    """CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    body BLOB NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    created_at REAL NOT NULL,
    delivered_at REAL,
    last_status INTEGER,
    last_error TEXT,
    UNIQUE (event_id, url)
)""",
    "CREATE INDEX IF NOT EXISTS webhook_due ON webhook_deliveries (status, next_attempt_at)",
)


def _baseline(conn: sqlite3.Connection) -> None:
    """Today's tables; an unversioned file keeps its rows and gets what it lacks. The
    first releases' event log had no ``dedupe`` column; SQLite cannot add a UNIQUE
    column, so the unique index that the column's constraint would make is added."""
    for statement in _BASELINE:
        conn.execute(statement)
    if "dedupe" not in columns(conn, "events"):
        conn.execute("ALTER TABLE events ADD COLUMN dedupe TEXT")
        conn.execute("CREATE UNIQUE INDEX events_dedupe ON events (dedupe)")


MIGRATIONS = (Migration(1, "chats.db as it was before versions", _baseline),)


def apply(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the open ``chats.db`` at ``path`` to the latest schema (see :func:`migrate`)."""
    return migrate(conn, MIGRATIONS, str(path))
