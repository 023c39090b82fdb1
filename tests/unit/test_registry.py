from gowa_py.models import SessionConfig, Webhook
from gowa_py.protocol import Me, SessionState
from gowa_py.registry import Registry


def test_session_lifecycle_is_persisted(tmp_path):
    registry = Registry(tmp_path / "gowa.db")
    config = SessionConfig(webhooks=[Webhook(url="https://example.com/h", events=["message"])])
    registry.create("a", config, "running")
    registry.set_status("a", SessionState.CONNECTED, None)
    registry.set_me("a", Me(jid="1@s.whatsapp.net", push_name="A"))
    registry.set_event_seq("a", 6, activity=1700000000.5)
    registry.set_event_seq("a", 7)
    registry.close()

    again = Registry(tmp_path / "gowa.db")
    record = again.get("a")
    assert record is not None
    assert record.status is SessionState.CONNECTED
    assert record.config == config
    assert record.me == Me(jid="1@s.whatsapp.net", push_name="A")
    assert record.last_event_seq == 7
    assert record.last_activity == 1700000000.5
    assert [t["status"] for t in again.transitions("a")] == ["CONNECTED", "STOPPED"]


def test_event_log_cursor_moves_to_another_log_and_old_registries_gain_the_column(tmp_path):
    path = tmp_path / "gowa.db"
    registry = Registry(path)
    registry.create("a", SessionConfig(), "running")
    registry.set_event_seq("a", 206)
    registry.db.execute("ALTER TABLE sessions DROP COLUMN event_epoch")
    registry.db.execute("PRAGMA user_version = 0")
    registry.close()

    again = Registry(path)  # a registry written before event logs had an identity
    record = again.get("a")
    assert record is not None and (record.event_epoch, record.last_event_seq) == (None, 206)
    again.set_event_log("a", "e2", 3)
    again.close()
    record = Registry(path).get("a")
    assert record is not None and (record.event_epoch, record.last_event_seq) == ("e2", 3)


def test_delete_removes_everything(tmp_path):
    registry = Registry(tmp_path / "gowa.db")
    registry.create("a", SessionConfig(), "stopped")
    registry.add_samples([{"ts": 1.0, "session_id": "a", "rss": 1, "pss": 1, "uss": 1, "cpu": 0.0}])
    registry.delete("a")
    assert registry.get("a") is None
    assert registry.samples_since(0) == []
    assert registry.transitions("a") == []


def test_samples_are_pruned_by_age(tmp_path):
    registry = Registry(tmp_path / "gowa.db")
    registry.add_samples(
        [
            {"ts": float(t), "session_id": "a", "rss": 1, "pss": 2, "uss": 3, "cpu": 0.0}
            for t in (10, 20, 30)
        ]
    )
    registry.prune_samples(older_than=25)
    assert [s["ts"] for s in registry.samples_since(0)] == [30.0]
