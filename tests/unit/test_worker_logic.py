"""Pure worker logic: the silence watchdog and the durable, de-duplicating event log."""

from gowa_py import protocol as p
from workers.eventlog import EventLog
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


def test_event_log_keeps_order_ids_and_drops_duplicates(tmp_path):
    log = EventLog(tmp_path / "chats.db", "s")
    first = log.append("message", {"id": "M1"}, dedupe="message:M1")
    assert first is not None and first.seq == 1
    assert log.append("message", {"id": "M1"}, dedupe="message:M1") is None
    second = log.append("session.status", {"status": "CONNECTED"})
    assert second is not None and second.seq == 2
    log.close()

    again = EventLog(tmp_path / "chats.db", "s")
    assert again.append("message", {"id": "M1"}, dedupe="message:M1") is None
    replay = again.since(0, 10)
    assert [(e.seq, e.id, e.name) for e in replay] == [
        (1, first.id, "message"), (2, second.id, "session.status")]
    assert isinstance(replay[0], p.Event)


def test_event_log_prunes_to_retention(tmp_path):
    log = EventLog(tmp_path / "chats.db", "s", retention=5)
    for n in range(12):
        log.append("x", {"n": n})
    log.close()
    again = EventLog(tmp_path / "chats.db", "s", retention=5)
    assert [e.payload["n"] for e in again.since(0, 100)] == [7, 8, 9, 10, 11]
