"""A consistent copy of a live SQLite database, taken without stopping its writers.

SQLite's online backup API copies page by page. Left to itself it restarts from the first
page whenever another process commits between two steps, so under a steady stream of
messages a stepped copy of a session's ``chats.db`` might never finish. The copy is made
inside one read transaction instead, held across the steps: in WAL mode (every database
here is in it) a reader never blocks a writer, who goes on appending to the log, and
every step reads the same snapshot, the moment the transaction began. What the reader
holds back is only the checkpoint past that moment, until the copy ends.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gowa_py.storage import sqlitefile

#: Pages per step: a step holds SQLite's internal mutex of the source connection only,
#: which no other process shares; small steps keep the copying thread's GIL turns short.
STEP_PAGES = 256


def copy_database(source: Path, target: Path, pages: int = STEP_PAGES, sleep: float = 0.0) -> None:
    """Copy ``source`` (which may be in use by other processes) to a new file ``target``,
    consistent as of one moment, in rollback-journal mode so it is one self-contained file."""
    src = sqlite3.connect(source, isolation_level=None, timeout=30)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            src.backup(dst, pages=pages, sleep=sleep)
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
        src.execute("COMMIT")
    finally:
        src.close()


def user_version(path: Path) -> int:
    """The schema version gowa-py keeps in ``PRAGMA user_version`` (docs/storage.md)."""
    conn = sqlitefile.read_only(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def whatsmeow_version(path: Path) -> int | None:
    """whatsmeow's own schema version (its ``whatsmeow_version`` table); None if absent."""
    conn = sqlitefile.read_only(path)
    try:
        row = conn.execute("SELECT version FROM whatsmeow_version").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return None if row is None else int(row[0])


def check_integrity(path: Path) -> str | None:
    """SQLite's quick check of a copied file: None when sound, else what is wrong."""
    try:
        conn = sqlitefile.read_only(path)
        try:
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return str(exc)
    return None if result == "ok" else str(result)
