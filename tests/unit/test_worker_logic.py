"""Pure worker logic: the silence watchdog and the durable, de-duplicating event log (the
log on each storage backend, ``storage_backend``)."""

import time

import psycopg

from gowa_py import protocol as p
from tests.procs import wait_until
from workers.eventlog import EventLog
from workers.stores import postgresql_db
from workers.timefmt import rfc3339
from workers.watchdog import SilenceWatch


def test_silence_is_overdue_only_after_threshold():
    watch = SilenceWatch(threshold_s=60)
    assert watch.overdue(now=1000) is None
    watch.keepalive_failed(now=1000)
    watch.keepalive_failed(now=1030)  # the first failure starts the clock
    assert watch.overdue(now=1059) is None
    assert watch.overdue(now=1061) == 61
    assert watch.overdue(now=1100) is None  # reset after reporting


def test_traffic_clears_silence_and_zero_disables():
    watch = SilenceWatch(threshold_s=60)
    watch.keepalive_failed(now=0)
    watch.traffic()
    assert watch.overdue(now=500) is None
    off = SilenceWatch(threshold_s=0)
    off.keepalive_failed(now=0)
    assert off.overdue(now=10_000) is None


def test_timestamps_are_rfc3339_utc_from_seconds_or_milliseconds():
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1_700_000_000.9) == "2023-11-14T22:13:20Z"
    assert rfc3339(1_700_000_000_900) == "2023-11-14T22:13:20Z"
    assert rfc3339(951_782_400) == "2000-02-29T00:00:00Z"


def test_event_log_keeps_order_ids_and_drops_duplicates(storage_backend):
    db = storage_backend.session_db()
    log = EventLog(db, "s")
    first = log.append("message", {"id": "M1"}, dedupe="message:M1")
    assert first is not None and first.seq == 1
    assert log.append("message", {"id": "M1"}, dedupe="message:M1") is None
    second = log.append("session.status", {"status": "CONNECTED"})
    assert second is not None and second.seq == 2
    db.close()

    again = EventLog(storage_backend.session_db(), "s")
    assert again.append("message", {"id": "M1"}, dedupe="message:M1") is None
    replay = again.since(0, 10)
    assert [(e.seq, e.id, e.name) for e in replay] == [
        (1, first.id, "message"),
        (2, second.id, "session.status"),
    ]
    assert isinstance(replay[0], p.Event)


def test_event_log_identity_survives_reopening_and_changes_with_a_new_log(storage_backend):
    log = EventLog(storage_backend.session_db(), "s")
    assert log.identity().start_seq == 0
    event = log.append("message", {"id": "M1"})
    assert event is not None and event.epoch == log.epoch
    log.append("message", {"id": "M2"})

    again = EventLog(storage_backend.session_db(), "s")
    assert again.identity() == p.EventLogIdentity(epoch=log.epoch, start_seq=2)
    assert {e.epoch for e in again.since(0, 10)} == {log.epoch}

    other = EventLog(storage_backend.session_db("other"), "other")
    assert other.epoch != log.epoch and other.start_seq == 0


def test_a_nested_transaction_joins_the_outer_one_and_hooks_wait_for_its_commit(
    storage_backend,
):
    db = storage_backend.session_db()
    log = EventLog(db, "s")
    reader = storage_backend.session_db()  # another connection sees commits only
    seen: list[tuple[str, int]] = []

    def hook(name: str) -> None:
        count = reader.connection.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        seen.append((name, count))

    with db.transaction():
        log.append("message.sent", {"id": "M1"})
        db.after_commit(lambda: hook("first"))
        log.append("message.sent", {"id": "M2"})
        db.after_commit(lambda: hook("second"))
        assert seen == [] and db.connection.in_transaction
    assert seen == [("first", 2), ("second", 2)]
    db.after_commit(lambda: hook("outside"))  # no transaction: at once
    assert seen[-1] == ("outside", 2)


def test_a_failed_transaction_rolls_back_and_forgets_its_hooks(storage_backend):
    db = storage_backend.session_db()
    log = EventLog(db, "s")
    ran: list[str] = []
    try:
        with db.transaction():
            log.append("message.sent", {"id": "M1"})
            db.after_commit(lambda: ran.append("hook"))
            raise RuntimeError("the send's record failed")
    except RuntimeError:
        pass
    assert ran == [] and not db.connection.in_transaction
    assert log.since(0, 10) == []
    assert log.append("message.sent", {"id": "M2"}).seq == 1  # no gap in the sequence


def test_event_log_prunes_to_retention_and_numbers_on(storage_backend):
    db = storage_backend.session_db()
    log = EventLog(db, "s", retention=5)
    for n in range(12):
        log.append("x", {"n": n})
    db.close()
    again = EventLog(storage_backend.session_db(), "s", retention=5)
    assert [e.payload["n"] for e in again.since(0, 100)] == [7, 8, 9, 10, 11]
    assert again.append("x", {"n": 12}).seq == 13


def test_lost_message_is_reported_once_and_only_if_never_recorded(storage_backend):
    import logging

    from workers.lost import LostMessageReporter, LostSuspects

    db = storage_backend.session_db()
    log = EventLog(db, "s")
    log.append("message", {"id": "SEEN"}, dedupe="message:1@s.whatsapp.net:SEEN")
    emitted: list[tuple[str, dict, str | None]] = []

    def emit(name, payload, dedupe=None):
        if log.append(name, payload, dedupe) is not None:
            emitted.append((name, payload, dedupe))

    logger = logging.getLogger("whatsmeow.Client.test")
    reporter = LostMessageReporter(LostSuspects(db), log, emit, grace_s=5)
    logger.addHandler(reporter)
    line = (
        "Ignoring message {} from 88:1@lid in 88@lid: failed to decrypt prekey message: "
        "failed to get or create message keys: received message with old counter "
        "(index: 21, count: 20)"
    )
    try:
        logger.warning(line.format("SEEN"))  # a harmless redelivery of a recorded message
        logger.warning(line.format("LATE"))  # its first copy is recorded within the grace
        logger.warning(line.format("GONE"))
        logger.warning(line.format("GONE"))  # reported once
        logger.warning("Ignoring message X from 88:1@lid in 88@lid: some other failure")
    finally:
        logger.removeHandler(reporter)
    reporter.judge(now=time.time())  # within the grace: nothing judged yet
    assert emitted == []
    log.append("message", {"id": "LATE"}, dedupe="message:1@s.whatsapp.net:LATE")
    reporter.close()
    db.close()
    # A restarted worker judges what the previous one suspected.
    db = storage_backend.session_db()
    log = EventLog(db, "s")
    again = LostMessageReporter(LostSuspects(db), log, emit, grace_s=5)
    again.judge(now=time.time() + 10)
    again.judge(now=time.time() + 20)
    assert [(name, payload["id"]) for name, payload, _ in emitted] == [("message.lost", "GONE")]
    assert emitted[0][1]["from"] == "88:1@lid"
    # Everything judged and nothing suspected since: the table is not read again (an
    # idle worker sends no statement every 5 s), so a row it did not add stays there.
    LostSuspects(db).add("UNSEEN", "88:1@lid", "88@lid", "old counter", time.time())
    again.judge(now=time.time() + 30)
    assert len(emitted) == 1


def test_whatsmeow_logs_at_the_workers_level_not_at_debug() -> None:
    import logging

    from neonize.utils.enum import LogLevel

    from workers import session

    neonize_logger = logging.getLogger(session.NEONIZE_LOGGER)
    whatsmeow = logging.getLogger("whatsmeow")
    saved = neonize_logger.level, whatsmeow.level
    try:
        neonize_logger.setLevel(logging.NOTSET)
        whatsmeow.setLevel(logging.WARNING)
        # What neonize hands to Go at connect: unset would mean "log everything".
        assert LogLevel.from_logging(neonize_logger.level) is LogLevel.NOTSET
        session._match_whatsmeow_log_level()
        assert LogLevel.from_logging(neonize_logger.level) is LogLevel.WARN
    finally:
        neonize_logger.setLevel(saved[0])
        whatsmeow.setLevel(saved[1])


def test_the_whatsmeow_store_is_put_in_wal_mode_and_checkpointed(tmp_path) -> None:
    import sqlite3

    from workers.system.storefile import checkpoint, use_wal

    existing = tmp_path / "old.db"
    with sqlite3.connect(existing) as db:
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
    for path in (existing, tmp_path / "new.db"):
        use_wal(path)
        use_wal(path)  # already WAL: left alone
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        db.close()
    # A writer that never closes (as whatsmeow): its commits stay in the log...
    writer = sqlite3.connect(existing, isolation_level=None)
    writer.execute("INSERT INTO t VALUES (2)")
    wal = tmp_path / "old.db-wal"
    assert wal.stat().st_size > 0
    # ...until the exiting worker checkpoints it.
    checkpoint(existing)
    assert wal.stat().st_size == 0
    writer.close()
    db = sqlite3.connect(existing)
    assert db.execute("SELECT x FROM t").fetchall() == [(1,), (2,)]
    db.close()
    checkpoint(tmp_path / "missing" / "x.db")  # best effort: no exception


def test_a_worker_whose_postgresql_connection_was_dropped_writes_again(test_database):
    """A server restart or a terminated backend ends the idle connection: the next
    statement finds it so before it is sent and goes to a new connection, so no write
    fails (a worker's first message after a restart was lost to a failed BEGIN)."""
    db = postgresql_db(test_database.url, "dropped")
    try:
        log = EventLog(db, "dropped")
        assert log.append("x", {"n": 1}).seq == 1
        old = db.connection.connection
        with psycopg.connect(test_database.url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'gowa-worker dropped'"
            )
            wait_until(
                lambda: (
                    not admin.execute(
                        "SELECT 1 FROM pg_stat_activity "
                        "WHERE application_name = 'gowa-worker dropped'"
                    ).fetchall()
                ),
                10,
                what="the terminated backend gone",
            )
        assert log.append("x", {"n": 2}).seq == 2
        assert db.connection.connection is not old
        assert [e.payload["n"] for e in log.since(0, 10)] == [1, 2]
    finally:
        db.close()
        test_database.empty()
