"""How gowa-py opens its SQLite files: one place for the flags every caller needs."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def read_only(path: Path, threads: bool = False) -> sqlite3.Connection:
    """``path`` opened read-only (a URI with ``mode=ro``): reading a copy, an archive or
    another program's store must never write to it, not even a journal. ``threads``: the
    caller serialises its use from several threads itself."""
    return sqlite3.connect(
        f"{path.absolute().as_uri()}?mode=ro", uri=True, check_same_thread=not threads
    )


def shared(path: Path) -> sqlite3.Connection:
    """``path`` opened for a store that several threads and processes use: autocommit
    (transactions are begun explicitly), WAL so readers do not block the writer, and a
    wait of up to 5 s for a lock instead of failing at once."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn
