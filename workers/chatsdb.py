"""The worker's one connection to its session's database: chat store, event log, suspects.

One connection under one lock, not one per table owner. In WAL mode a connection drops
its page cache whenever another one has written since its last transaction, so with
three of them every message re-read from the log the pages the others had just changed,
and every transaction took the shared-memory locks anew (strace of a worker sending and
receiving: ~30 ``pread`` and ~35 ``fcntl`` calls per message). The gateway's webhook outbox
opens the file from its own process, so the locking mode stays the shared one. On
PostgreSQL the same holds for the same reason: one connection per worker, not one per
store. The tables are made and migrated by the backend's schema module when the factory
(``workers.stores``) opens the connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from gowa_py.storage.sql import Connection, Dialect


class ChatsDb:
    """The connection and the lock every user of it holds (neonize calls from Go threads)."""

    def __init__(self, connection: Connection, dialect: Dialect) -> None:
        # Re-entrant: a table owner may be used from inside another one's critical section.
        self.lock = threading.RLock()
        self.connection = connection
        self._begin = dialect.begin
        self._after_commit: list[Callable[[], None]] = []

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction; one opened inside another (same thread) joins it.

        So a sent message and its ``message.sent`` event are one commit, not two: each
        commit of a WAL database takes and releases its locks and writes the log's frame
        headers and index anew (a PostgreSQL commit is a round trip and a log flush).
        Under the lock, an open transaction is this thread's: every other user of the
        connection writes in autocommit.
        """
        with self.lock:
            outer = not self.connection.in_transaction
            if outer:
                self.connection.execute(self._begin)
            try:
                yield self.connection
            except BaseException:
                if outer:
                    self._after_commit.clear()
                    if self.connection.in_transaction:  # SQLite may have rolled back itself
                        self.connection.execute("ROLLBACK")
                raise
            if outer:
                self.connection.execute("COMMIT")
                hooks, self._after_commit = self._after_commit, []
                for hook in hooks:
                    hook()

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once what this thread wrote is committed: at once outside a
        transaction. Hooks run under the lock, so in the order of the commits."""
        with self.lock:
            if self.connection.in_transaction:
                self._after_commit.append(hook)
            else:
                hook()

    def close(self) -> None:
        with self.lock:
            self.connection.close()
