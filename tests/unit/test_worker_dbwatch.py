"""The worker's watch on its PostgreSQL connection (workers/dbwatch.py), against a server
of the test's own: told at once when the server shuts down, never by the answers of its
own statements, and back once the server answers, after writing what it held."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import psycopg
import pytest

from workers.dbwatch import DatabaseWatch, connection_lost
from workers.eventlog import EventLog
from workers.stores import postgresql_db


async def _until(condition: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_shutdown_is_seen_at_once_and_held_records_written_when_back(pg_server):
    loop = asyncio.get_running_loop()
    db = postgresql_db(pg_server.url, "watched")
    log = EventLog(db, "watched")
    lost: list[str] = []
    back = asyncio.Event()
    watch = DatabaseWatch(db, loop, lost.append, back.set)
    watch.start()
    try:
        # Statements of other threads make the socket readable: their answers, no alarm.
        await asyncio.to_thread(lambda: [log.append("x", {"n": 0}) for _ in range(50)])
        await asyncio.sleep(0.2)
        assert lost == []

        await asyncio.to_thread(pg_server.stop, "fast")
        stopped = time.monotonic()
        await _until(lambda: lost, 2)
        told_after = time.monotonic() - stopped
        assert watch.down
        assert lost == ["the server ended the connection"]

        def record() -> None:
            log.append("x", {"n": 1})

        with pytest.raises(psycopg.OperationalError) as failed:
            record()
        assert watch.hold(failed.value, record)
        assert not watch.hold(ValueError("a bug"), record)  # not the database: raised
        timeout = psycopg.errors.QueryCanceled("canceling statement due to statement timeout")
        assert not watch.hold(timeout, record)  # the server answered: the same connection
        await asyncio.sleep(1.5)
        assert not back.is_set()  # nobody answers yet

        await asyncio.to_thread(pg_server.start)
        await asyncio.wait_for(back.wait(), 20)
        assert [e.payload["n"] for e in log.since(0, 100)] == [0] * 50 + [1]
        assert lost == ["the server ended the connection"]  # told once
    finally:
        watch.close()
        db.close()
    print(f"the shutdown was seen {told_after * 1000:.0f} ms after pg_ctl stop returned")


def test_only_a_connection_out_of_reach_counts_as_the_database_lost():
    refused = psycopg.OperationalError("connection refused")
    assert connection_lost(refused)
    wrapped = RuntimeError("while recording")
    wrapped.__cause__ = psycopg.errors.AdminShutdown("terminating connection")
    assert connection_lost(wrapped)
    assert connection_lost(psycopg.errors.CannotConnectNow("the database system is starting up"))
    assert not connection_lost(psycopg.errors.QueryCanceled("statement timeout"))
    assert not connection_lost(psycopg.errors.LockNotAvailable("lock timeout"))
    assert not connection_lost(psycopg.errors.UniqueViolation("duplicate key"))


async def test_a_worker_ending_before_the_database_is_back_says_what_it_lost(pg_server, caplog):
    loop = asyncio.get_running_loop()
    db = postgresql_db(pg_server.url, "ending")
    log = EventLog(db, "ending")
    watch = DatabaseWatch(db, loop, lambda _reason: None, lambda: None)
    watch.start()
    try:
        await asyncio.to_thread(pg_server.stop, "fast")
        await _until(lambda: watch.down, 2)

        def record() -> None:
            log.append("x", {"n": 1})

        with pytest.raises(psycopg.OperationalError) as failed:
            record()
        assert watch.hold(failed.value, record)
    finally:
        watch.close()
        db.close()
    assert "1 incoming messages or receipts whose recording" in caplog.text
