"""Opening a session's stores: the one place the worker chooses a storage backend.

The worker's logic is typed against ``gowa_py.storage.interfaces``; this module maps
them to an implementation. Today that is SQLite, every store in the session's
``chats.db`` behind one connection (``ChatsDb``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workers.chatsdb import ChatsDb
from workers.chatstore import ChatStore
from workers.eventlog import EventLog
from workers.lost import LostSuspects

if TYPE_CHECKING:
    from gowa_py.storage.interfaces import (
        ChatStorage,
        EventStorage,
        SessionDatabase,
        SuspectStorage,
    )


@dataclass(frozen=True)
class SessionStores:
    """A session's stores, sharing one unit of work (``db``)."""

    db: SessionDatabase
    events: EventStorage
    chats: ChatStorage
    suspects: SuspectStorage


def open_session_stores(
    session_dir: Path, session_id: str, event_retention: int, chat_retention_days: int | None
) -> SessionStores:
    """Open (creating or migrating as needed) the stores of the session in ``session_dir``."""
    db = ChatsDb(session_dir / "chats.db")
    return SessionStores(
        db=db,
        events=EventLog(db, session_id, event_retention),
        chats=ChatStore(db, chat_retention_days),
        suspects=LostSuspects(db),
    )
