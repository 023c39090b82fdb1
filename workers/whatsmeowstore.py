"""Reading whatsmeow's own store: the chat settings it keeps from app-state patches.

neonize's whatsmeow writes the session's store: ``whatsmeow.db`` in the session dir, or
the session's PostgreSQL schema, where the worker's own connection finds its tables
(``search_path``). The worker reads the whole account's chat settings there in one
statement instead of asking neonize chat by chat (``get_chat_settings``: a cgo call and a
store query each, a database round trip each on PostgreSQL), and never writes them. The
table is whatsmeow's at the schema version neonize makes (``NEONIZE_STORE_VERSION`` of
``gowa_py.importers.whatsmeow_store``, checked against a store neonize made).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from gowa_py.storage import sqlitefile
from gowa_py.storage.sql import Sql
from workers.chatsdb import ChatsDb

CHAT_SETTINGS = "SELECT chat_jid, pinned, archived FROM whatsmeow_chat_settings WHERE our_jid = ?"


def _chat_settings(sql: Sql, device: str, chat: str | None) -> dict[str, tuple[bool, bool]]:
    query, args = CHAT_SETTINGS, [device]
    if chat is not None:
        query, args = query + " AND chat_jid = ?", [device, chat]
    return {row[0]: (bool(row[1]), bool(row[2])) for row in sql.execute(query, args)}


class SqliteWhatsmeow:
    """``whatsmeow.db`` of the session, opened read-only at its first read: the file
    exists once whatsmeow has run, which a logged-in session's has."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def chat_settings(self, device: str, chat: str | None = None) -> dict[str, tuple[bool, bool]]:
        """Each chat's (pinned, archived) as whatsmeow stored them for ``device`` (its
        JID with the device number), or the one chat's; chats it has none for are absent."""
        with self._lock:
            if self._db is None:
                self._db = sqlitefile.read_only(self.path, threads=True)
            return _chat_settings(self._db, device, chat)

    def close(self) -> None:
        """Before the worker checkpoints whatsmeow's log, which a reader would hold up."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class SchemaWhatsmeow:
    """whatsmeow's tables in the session's PostgreSQL schema, read through the worker's
    one connection (``ChatsDb``)."""

    def __init__(self, db: ChatsDb) -> None:
        self._db = db

    def chat_settings(self, device: str, chat: str | None = None) -> dict[str, tuple[bool, bool]]:
        with self._db.lock:
            return _chat_settings(self._db.connection, device, chat)

    def close(self) -> None:
        """Nothing of its own: the connection is the session database's."""
