"""The worker's watch on its PostgreSQL connection: off WhatsApp while the database is away.

whatsmeow acknowledges a message to WhatsApp once it has handled it, whether or not its
store (on the same PostgreSQL) and ours could keep it: a message reaching a worker whose
database does not answer is lost. So a worker stops taking messages the moment its
database goes away (disconnects from WhatsApp, whose servers keep them, as the sandbox
does) and starts afresh once the database answers again, to receive them then.

The server ending the connection (a restart, a fast shutdown) is seen at once: it sends
its reason and closes the socket, which the event loop watches while the connection is
idle, at no cost while nothing arrives. A silent loss (a network cut) is seen by the
connection's TCP keepalives (``gowa_py.storage.postgres.KEEPALIVES``), or by the first
statement that fails. A message being recorded in that instant is kept in memory
(:meth:`DatabaseWatch.hold`) and recorded once the database answers, before the restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg

from gowa_py.storage.postgres import PgConnection
from workers.chatsdb import ChatsDb

log = logging.getLogger("gowa.worker.database")

#: Seconds between looks at a socket that turned readable while a statement was under
#: way (its answer, read by the statement's own thread).
BUSY_RECHECK_S = 0.05
#: Seconds between attempts to reach the database again: the first, and the most.
RETRY_FIRST_S = 0.5
RETRY_CAP_S = 5.0
#: SQLSTATEs of a server that ends or refuses connections: admin_shutdown,
#: crash_shutdown, cannot_connect_now (starting or stopping).
_GOING_AWAY = frozenset({"57P01", "57P02", "57P03"})


def connection_lost(error: BaseException) -> bool:
    """Whether a failure (or what caused it) is the database out of reach: the connection
    failed or ended (no SQLSTATE, a connection exception, the server going away). A
    statement the server refused (a timeout, a lock, a constraint) is not: the same
    connection goes on."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, psycopg.OperationalError):
            state = seen.sqlstate
            return state is None or state.startswith("08") or state in _GOING_AWAY
        seen = seen.__cause__ or seen.__context__
    return False


class DatabaseWatch:
    """Calls ``lost`` (on the event loop) once when the database goes away, and ``back``
    once it answers again and every held record is written."""

    def __init__(
        self,
        db: ChatsDb,
        loop: asyncio.AbstractEventLoop,
        lost: Callable[[str], None],
        back: Callable[[], None],
    ) -> None:
        if not isinstance(db.connection, PgConnection):
            raise TypeError("only a PostgreSQL connection is watched")
        self._db = db
        self._connection = db.connection
        self._loop = loop
        self._lost = lost
        self._back = back
        self._fd: int | None = None
        self._down = False
        self._held: list[Callable[[], None]] = []
        self._recovery: asyncio.Task[None] | None = None

    @property
    def down(self) -> bool:
        return self._down

    def start(self) -> None:
        self._arm()

    def close(self) -> None:
        """Stop watching; records still held (the worker ends before the database is
        back: its lease ran out) are lost, and the log says how many."""
        self._disarm()
        if self._recovery is not None:
            self._recovery.cancel()
        with self._db.lock:
            held = len(self._held)
        if held:
            log.error(
                "%d incoming messages or receipts whose recording the database's loss cut "
                "short are lost: the worker ends before the database is back",
                held,
            )

    def hold(self, error: BaseException, record: Callable[[], None]) -> bool:
        """``record`` failed with ``error`` (any thread): when the database is away, keep
        it to run again once it answers, and say so; else False (a bug: the caller raises)."""
        if not connection_lost(error):
            return False
        with self._db.lock:
            self._held.append(record)
        self.failed(f"a statement failed ({error})")
        return True

    def failed(self, reason: str) -> None:
        """A statement found the database away (any thread)."""
        self._loop.call_soon_threadsafe(self._went_away, reason)

    # ------------------------------------------------------------------ watching

    def _arm(self) -> None:
        if self._down:
            return
        # Without the lock (the loop must not wait for a statement): a connection broken
        # or replaced meanwhile is seen at the next look.
        try:
            fd = None if self._connection.connection.broken else self._connection.fileno()
        except psycopg.Error:
            fd = None
        if fd is None:
            self._went_away("the connection is broken")
            return
        self._fd = fd
        self._loop.add_reader(fd, self._readable)

    def _disarm(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._fd = None

    def _readable(self) -> None:
        self._disarm()
        if not self._db.lock.acquire(blocking=False):
            # A statement's answer, which its own thread reads: look again after it.
            self._loop.call_later(BUSY_RECHECK_S, self._arm)
            return
        try:
            ended = self._connection.ended()
        finally:
            self._db.lock.release()
        if ended:
            self._went_away("the server ended the connection")
        else:
            self._arm()

    def _went_away(self, reason: str) -> None:
        if self._down:
            return
        self._down = True
        self._disarm()
        log.error("the database does not answer (%s); off WhatsApp until it does", reason)
        self._lost(reason)
        self._recovery = self._loop.create_task(self._recover(), name="database-recovery")

    # ------------------------------------------------------------------ recovery

    async def _recover(self) -> None:
        delay = RETRY_FIRST_S
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_CAP_S)
            if not await self._loop.run_in_executor(None, self._reconnect):
                continue
            if await self._loop.run_in_executor(None, self._write_held):
                break
        log.info("the database answers again")
        self._back()

    def _reconnect(self) -> bool:
        with self._db.lock:
            try:
                self._connection.reconnect()
                # A pooler (PgBouncer) takes the connection while the server is still
                # away: a statement's answer is what says the database is back.
                self._connection.connection.execute("SELECT 1")
            except psycopg.Error as exc:
                log.info("the database still does not answer: %s", exc)
                return False
        return True

    def _write_held(self) -> bool:
        """Write what was held; False when the database went away again meanwhile."""
        while True:
            with self._db.lock:
                if not self._held:
                    return True
                record = self._held[0]
            try:
                record()
            except Exception as exc:
                if connection_lost(exc):
                    log.info("the database went away again: %s", exc)
                    return False
                log.exception("a held record failed")
            with self._db.lock:
                self._held.pop(0)
