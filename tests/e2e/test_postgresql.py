"""A gateway that keeps everything in PostgreSQL: sessions pair, talk, survive a restart of
the gateway without a QR code, and leave nothing behind when deleted."""

from __future__ import annotations

import psycopg
import pytest

from gowa_py.storage import postgres
from tests.backends import ScratchDatabase
from tests.e2e.conftest import new_phone, pair, session_dir
from tests.procs import Gateway, wait_until
from tests.receiver import WebhookReceiver

pytestmark = pytest.mark.integration

SENDER, RECEIVER = "15550000611", "15550000612"


def _tables(database: ScratchDatabase, schema: str) -> set[str]:
    with psycopg.connect(database.url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema]
        ).fetchall()
    return {row[0] for row in rows}


def _history(gateway: Gateway, session_id: str, chat: str) -> list[str]:
    status, body = gateway.http.get(f"/api/{session_id}/chat/{chat}@s.whatsapp.net/messages")
    assert status == 200, body
    return [item["content"] for item in body["results"]["data"]]


def test_sessions_live_in_postgresql_across_a_restart_and_go_with_their_schema(
    gateway_factory, sandbox, test_database, open_tmp
):
    """Workers as in production: forked by the zygote, with a uid each and confined (the
    data dir is one other users may pass through), so psycopg must be in the preload."""
    receiver = WebhookReceiver("s3cret").start()
    env = {
        "GOWA_DATABASE_URL": test_database.url,
        "GOWA_WEBHOOK_URL": receiver.url,
        "GOWA_WEBHOOK_SECRET": "s3cret",
        "GOWA_WEBHOOK_EVENTS": "message",
        "GOWA_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
    }
    gateway = gateway_factory(
        env=env, data_dir=open_tmp / "data", args=["--sandbox", sandbox.url], start=False
    )
    try:
        gateway.start()
        new_phone(sandbox, SENDER, "Sender")
        new_phone(sandbox, RECEIVER, "Receiver")
        pair(gateway, sandbox, "pgsnd", SENDER)
        pair(gateway, sandbox, "pgrcv", RECEIVER)

        status, body = gateway.http.post(
            "/api/pgsnd/send/message", {"phone": RECEIVER, "message": "kept in postgres"}
        )
        assert status == 200, body
        message_id = body["results"]["message_id"]
        wait_until(
            lambda: "kept in postgres" in _history(gateway, "pgrcv", SENDER),
            20,
            what="the message in the receiver's chat history",
        )
        wait_until(
            lambda: message_id in {r.body["payload"]["id"] for r in receiver.items("message")},
            20,
            what="the message at the webhook receiver",
        )
        # Every store of the session is in its schema, none in the session's folder.
        tables = _tables(test_database, "gowa_s_pgrcv")
        assert {"messages", "events", "webhook_deliveries", "whatsmeow_device"} <= tables
        assert not list(session_dir(gateway, "pgrcv").glob("*.db"))
        # The worker and its whatsmeow log in as the session's own role.
        with psycopg.connect(test_database.url) as conn:
            users = conn.execute(
                "SELECT application_name, usename FROM pg_stat_activity "
                "WHERE application_name LIKE 'gowa-%% pgrcv'"
            ).fetchall()
        assert {name for name, _ in users} == {"gowa-worker pgrcv", "gowa-whatsmeow pgrcv"}
        assert {user for _, user in users} == {
            postgres.session_role(test_database.name, "gowa_s_pgrcv")
        }

        gateway.stop()
        gateway.start()
        for session_id in ("pgsnd", "pgrcv"):  # no QR code was scanned again
            gateway.wait_status(session_id, {"CONNECTED"}, timeout=30)
        assert "kept in postgres" in _history(gateway, "pgrcv", SENDER)
        status, body = gateway.http.post(
            "/api/pgrcv/send/message", {"phone": SENDER, "message": "after the restart"}
        )
        assert status == 200, body
        wait_until(
            lambda: "after the restart" in _history(gateway, "pgsnd", RECEIVER),
            20,
            what="a message sent after the restart",
        )

        status, body = gateway.http.call("DELETE", "/api/sessions/pgrcv")
        assert status in (200, 204), body
        assert "gowa_s_pgrcv" not in test_database.schemas()
        with psycopg.connect(test_database.url) as conn:
            role = postgres.session_role(test_database.name, "gowa_s_pgrcv")
            assert not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchall()
        assert "gowa_s_pgsnd" in test_database.schemas()
    finally:
        gateway.cleanup()
        receiver.close()
        test_database.empty()
