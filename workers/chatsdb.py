"""The worker's one connection to its ``chats.db``: chat store, event log, lost suspects.

One connection under one lock, not one per table owner. In WAL mode a connection drops
its page cache whenever another one has written since its last transaction, so with
three of them every message re-read from the log the pages the others had just changed,
and every transaction took the shared-memory locks anew (strace of a worker sending and
receiving: ~30 ``pread`` and ~35 ``fcntl`` calls per message). The gateway's webhook outbox
opens the file from its own process, so the locking mode stays the shared one.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class ChatsDb:
    """The connection and the lock every user of it holds (neonize calls from Go threads)."""

    def __init__(self, path: Path) -> None:
        # Re-entrant: a table owner may be used from inside another one's critical section.
        self.lock = threading.RLock()
        self.connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.connection.row_factory = sqlite3.Row
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.execute("PRAGMA busy_timeout=5000")

    def close(self) -> None:
        with self.lock:
            self.connection.close()
