"""The registry, on each storage backend (``storage_backend``)."""

import psycopg

from gowa_py.models import SessionConfig, Webhook
from gowa_py.protocol import Me, SessionState
from gowa_py.registry import ApiKeyRecord
from gowa_py.storage import postgres
from gowa_py.storage.factory import PostgresStorage, sqlite_registry


def test_session_lifecycle_is_persisted(storage_backend):
    registry = storage_backend.registry()
    config = SessionConfig(webhooks=[Webhook(url="https://example.com/h", events=["message"])])
    registry.create("a", config, "running")
    registry.set_status("a", SessionState.CONNECTED, None)
    registry.set_me("a", Me(jid="1@s.whatsapp.net", push_name="A"))
    registry.set_event_seq("a", 6, activity=1700000000.5)
    registry.set_event_seq("a", 7)
    registry.close()

    again = storage_backend.registry()
    record = again.get("a")
    assert record is not None
    assert record.status is SessionState.CONNECTED
    assert record.config == config
    assert record.me == Me(jid="1@s.whatsapp.net", push_name="A")
    assert record.last_event_seq == 7
    assert record.last_activity == 1700000000.5
    assert [t["status"] for t in again.transitions("a")] == ["CONNECTED", "STOPPED"]
    again.set_event_log("a", "e2", 3)
    record = storage_backend.registry().get("a")
    assert record is not None and (record.event_epoch, record.last_event_seq) == ("e2", 3)


def test_old_registries_gain_the_event_log_column(tmp_path):
    path = tmp_path / "gowa.db"
    registry = sqlite_registry(path)
    registry.create("a", SessionConfig(), "running")
    registry.set_event_seq("a", 206)
    registry.db.execute("ALTER TABLE sessions DROP COLUMN event_epoch")
    registry.db.execute("PRAGMA user_version = 0")
    registry.close()

    again = sqlite_registry(path)  # a registry written before event logs had an identity
    record = again.get("a")
    assert record is not None and (record.event_epoch, record.last_event_seq) == (None, 206)


def test_delete_removes_everything(storage_backend):
    registry = storage_backend.registry()
    registry.create("a", SessionConfig(), "stopped")
    registry.create("b", SessionConfig(), "stopped")
    registry.add_samples([{"ts": 1.0, "session_id": "a", "rss": 1, "pss": 1, "uss": 1, "cpu": 0.0}])
    registry.add_key(ApiKeyRecord("k1", "only a", ("a",), "full", "d1", 1.0))
    registry.add_key(ApiKeyRecord("k2", "a and b", ("a", "b"), "read", "d2", 2.0))
    registry.delete("a")
    assert registry.get("a") is None
    assert registry.samples_since(0) == []
    assert registry.transitions("a") == []
    reopened = storage_backend.registry()
    assert [r.id for r in reopened.all()] == ["b"]
    kept = reopened.keys()
    assert [(k.id, k.sessions) for k in kept] == [("k2", ("b",))]


def test_samples_and_history_are_kept_and_pruned_by_age(storage_backend):
    registry = storage_backend.registry()
    registry.add_samples(
        [
            {"ts": float(t), "session_id": "a", "rss": 1, "pss": 2, "uss": 3, "cpu": 0.0}
            for t in (10, 20, 30)
        ]
    )
    registry.prune_samples(older_than=25)
    assert [s["ts"] for s in registry.samples_since(0)] == [30.0]

    registry.add_message_counts({(1, "a"): (2, 1), (2, "a"): (1, 0)})
    registry.add_message_counts({(1, "a"): (1, 1)})
    assert registry.message_counts_since(0) == [
        {"hour": 1, "session_id": "a", "received": 3, "sent": 2},
        {"hour": 2, "session_id": "a", "received": 1, "sent": 0},
    ]
    for ts, connected in ((100.0, 1), (200.0, 2), (300.0, 3)):
        registry.add_connected_point(ts, connected, 3)
    assert [p["ts"] for p in registry.connected_since(250)] == [200.0, 300.0]
    registry.prune_dashboard_history(older_than=250)
    assert [p["ts"] for p in registry.connected_since(0)] == [300.0]
    registry.prune_dashboard_history(older_than=2 * 3600)
    assert [c["hour"] for c in registry.message_counts_since(0)] == [2]


def _heard(listener: psycopg.Connection) -> list[str]:
    return [n.payload for n in listener.notifies(timeout=0.5, stop_after=None) if n.payload]


def test_nodes_sharing_postgresql_see_each_others_keys_and_hear_changes(database):
    """Two nodes' registries on one database: a key made on one is found by the other at
    once; a change is announced on ``REGISTRY_CHANNEL`` (what each node's relay hears),
    and a node that missed the notice reads it at its next round (``reload``)."""
    one = PostgresStorage(database.url)
    two = PostgresStorage(database.url)
    with psycopg.connect(database.url, autocommit=True) as listener:
        listener.execute(f"LISTEN {postgres.REGISTRY_CHANNEL}")
        try:
            a, b = one.registry, two.registry
            a.create("s1", SessionConfig(), "stopped")
            a.create("s2", SessionConfig(), "stopped")
            assert b.get_key("k1") is None
            a.add_key(ApiKeyRecord("k1", "s1", ("s1",), "full", "d1", 1.0))
            # Unknown a moment ago, the id is looked up again only once that moment passed.
            assert b.get_key("k1") is None
            assert b.reload_key("k1") == a.get_key("k1")
            a.add_key(ApiKeyRecord("k2", "both", ("s1", "s2"), "read", "d2", 2.0))
            assert b.get_key("k2") == a.get_key("k2")
            listed = b.keys()
            assert [k.id for k in listed] == ["k1", "k2"]
            _heard(listener)

            assert b.delete_key("k1")  # made on the other node
            assert not b.delete_key("k1")
            b.set_config("s1", SessionConfig(idle_timeout=600))
            b.delete("s2")
            assert _heard(listener) == ["key:k1", "session:s1", "key:k2", "session:s2"]

            # a missed the notices: its round reads what b changed.
            assert a.get_key("k1") is not None
            a.reload()
            assert a.get_key("k1") is None
            assert a.get_key("k2") is not None and a.get_key("k2").sessions == ("s1",)
            record = a.get("s1")
            assert record is not None and record.config.idle_timeout == 600
            assert a.get("s2") is None
        finally:
            one.close()
            two.close()
