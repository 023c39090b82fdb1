"""Opening a session's stores: the one place the worker chooses a storage backend.

The worker's logic is typed against ``gowa_py.storage.interfaces``; this module maps
them to an implementation, every store behind one connection (``ChatsDb``): the
session's ``chats.db`` in its session dir, or, when the gateway keeps its state in
PostgreSQL, the session's own schema there.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from gowa_py.storage import chats_schema, pg_schema, postgres, sqlitefile
from gowa_py.storage.sql import POSTGRESQL, SQLITE
from workers.chatsdb import ChatsDb
from workers.chatstore import ChatStore
from workers.eventlog import EventLog
from workers.lost import LostSuspects
from workers.whatsmeowstore import SchemaWhatsmeow, SqliteWhatsmeow

if TYPE_CHECKING:
    from gowa_py.storage.interfaces import (
        ChatStorage,
        EventStorage,
        SessionDatabase,
        SuspectStorage,
        WhatsmeowStorage,
    )


@dataclass(frozen=True)
class SessionStores:
    """A session's stores, sharing one unit of work (``db``)."""

    db: SessionDatabase
    events: EventStorage
    chats: ChatStorage
    suspects: SuspectStorage
    #: whatsmeow's own store of the session (neonize writes it), read only.
    whatsmeow: WhatsmeowStorage
    #: ``db`` itself when on PostgreSQL (its connection watched, workers/dbwatch.py);
    #: None on SQLite.
    postgres: ChatsDb | None = None


#: Seconds an attempt to reach the database may take: a worker waiting for it to come
#: back tries again every few seconds (workers/dbwatch.py), not once in 130.
CONNECT_TIMEOUT_S = 5


def sqlite_db(path: Path) -> ChatsDb:
    """The session's ``chats.db`` at ``path``, created or migrated as needed."""
    connection = sqlitefile.shared(path)
    connection.row_factory = sqlite3.Row
    chats_schema.apply(connection, path)
    return ChatsDb(connection, SQLITE)


def postgresql_db(url: str, session_id: str, pooled: bool = False) -> ChatsDb:
    """The session's schema in the PostgreSQL database at ``url`` (a pooler's when
    ``pooled``), created or migrated as needed, through the worker's one connection."""
    schema = postgres.session_schema(session_id)

    def connect() -> psycopg.Connection[Any]:
        return postgres.connect(
            url, schema, f"gowa-worker {session_id}", CONNECT_TIMEOUT_S, pooled=pooled
        )

    connection = postgres.PgConnection(connect)
    try:
        postgres.migrate(connection.connection, schema, pg_schema.SESSION, f"session {session_id}")
    except BaseException:
        connection.close()
        raise
    return ChatsDb(connection, POSTGRESQL)


def open_session_stores(
    session_dir: Path,
    session_id: str,
    event_retention: int,
    chat_retention_days: int | None,
    database_url: str = "",
    database_pooled: bool = False,
) -> SessionStores:
    """Open (creating or migrating as needed) the stores of the session: in
    ``session_dir``, or in PostgreSQL when ``database_url`` is given (through a pooler
    when ``database_pooled``)."""
    whatsmeow: WhatsmeowStorage
    on_postgresql: ChatsDb | None = None
    if database_url:
        db = on_postgresql = postgresql_db(database_url, session_id, database_pooled)
        whatsmeow = SchemaWhatsmeow(db)
    else:
        db = sqlite_db(session_dir / "chats.db")
        whatsmeow = SqliteWhatsmeow(session_dir / "whatsmeow.db")
    return SessionStores(
        db=db,
        events=EventLog(db, session_id, event_retention),
        chats=ChatStore(db, chat_retention_days),
        suspects=LostSuspects(db),
        whatsmeow=whatsmeow,
        postgres=on_postgresql,
    )
