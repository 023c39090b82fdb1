"""whatsmeow's SQLite store (``whatsmeow.db``): WAL mode, and its checkpoint at exit.

whatsmeow opens the store with a fixed DSN (go-sqlite3's ``synchronous=NORMAL``) and so
would keep SQLite's rollback journal: every commit, one or more per message sent or
received, creates a journal file, fsyncs it, the folder and the database, and deletes it
again. WAL mode, a setting kept in the database file, makes a commit an append to the
log that survives a crash or kill of the worker; only an OS crash may lose the last
commits, as for the worker's own ``chats.db`` (mautrix's whatsmeow bridges run their
stores this way). It cuts the worker's CPU per send (docs/benchmarks.md, "API latency").

whatsmeow never closes its store, so no last close folds the log back into the
database; a worker that exits checkpoints it instead, or the next one would rebuild the
log's index from the whole log while starting (docs/benchmarks.md, "Start-up").
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

log = logging.getLogger("gowa.worker.store")

#: Bytes 18-19 of an SQLite header: file format versions, 2 for WAL.
_WAL_VERSIONS = b"\x02\x02"
#: SQLite's messages for a damaged file (SQLITE_CORRUPT, SQLITE_NOTADB), which whatsmeow
#: passes on in its errors: retrying cannot help.
_DAMAGED = ("database disk image is malformed", "file is not a database")
#: What the session's error advises for a damaged whatsmeow.db.
DAMAGED_ADVICE = (
    "restore it from a backup, or move it away and link the session again with a new QR code"
)


def damaged(error: str) -> bool:
    """Whether an error from SQLite (or whatsmeow quoting it) says the file is damaged."""
    return any(marker in error for marker in _DAMAGED)


def use_wal(path: Path) -> None:
    """Switch the store to WAL mode (a new one is created so); before neonize opens it."""
    with contextlib.suppress(FileNotFoundError), path.open("rb") as db:
        if db.read(20)[18:20] == _WAL_VERSIONS:
            return
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def checkpoint(path: Path) -> None:
    """Fold the log into the database and empty it; best effort (a start recovers anyway)."""
    try:
        connection = sqlite3.connect(path.absolute().as_uri() + "?mode=rw", uri=True, timeout=1)
        try:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()
    except sqlite3.Error as exc:
        log.info("could not checkpoint %s: %s", path.name, exc)
