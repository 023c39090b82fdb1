"""Secrets at rest and in responses: private files, write-only secrets, no global secret in
a session's files, and signatures that still verify (real gateway, workers, receivers)."""

from __future__ import annotations

import json
import secrets
import sqlite3
from pathlib import Path

import pytest

from tests.procs import wait_until
from tests.receiver import WebhookReceiver

pytestmark = pytest.mark.integration

GLOBAL = "global-" + secrets.token_hex(12)
OWN = "own-" + secrets.token_hex(12)
PROXY_PASSWORD = "proxypw" + secrets.token_hex(12)


def _sqlite_files(data_dir: Path) -> list[Path]:
    names = ["gowa.db", *(f"sessions/{s}/chats.db" for s in ("run", "idle"))]
    return [data_dir / f"{name}{suffix}" for name in names for suffix in ("", "-wal", "-shm")]


def test_database_files_are_private(gateway_factory):
    gateway = gateway_factory()
    for session_id, start in (("run", True), ("idle", False)):
        status, body = gateway.http.post(
            "/api/sessions", {"session_id": session_id, "start": start}
        )
        assert status == 201, body
    gateway.wait_status("run", {"DISCONNECTED"}, timeout=60)
    # The idle session's chats.db is created by the gateway (its webhook outbox), the other
    # by the worker.
    status, body = gateway.http.get("/api/idle/webhooks/deliveries")
    assert status == 200, body
    files = _sqlite_files(gateway.data_dir)
    wait_until(lambda: all(f.exists() for f in files), 30, what=f"all of {files}")

    def modes() -> dict[str, str]:
        return {str(f): oct(f.stat().st_mode & 0o777) for f in files if f.exists()}

    assert set(modes().values()) == {"0o600"}, modes()
    # Files an older version left readable are closed when the gateway opens them.
    gateway.stop()
    for f in files:
        if f.exists():
            f.chmod(0o644)
    gateway.start()
    wait_until(lambda: set(modes().values()) == {"0o600"}, 30, what=f"0600: {modes()}")


def _no_secret(body: object) -> str:
    text = json.dumps(body)
    assert OWN not in text and PROXY_PASSWORD not in text, text
    return text


def test_secrets_are_write_only_and_kept_by_a_round_trip(gateway):
    hook = {"url": "https://hooks.example.com/crm", "secret": OWN, "events": ["message"]}
    proxy = f"http://user:{PROXY_PASSWORD}@9.9.9.9:3128"
    status, body = gateway.http.post(
        "/api/sessions",
        {"session_id": "s", "start": False, "config": {"webhooks": [hook], "proxy": proxy}},
    )
    assert status == 201
    _no_secret(body)
    config = body["results"]["config"]
    assert config["webhooks"][0]["secret"] == "****"
    assert config["proxy"] == "http://user:****@9.9.9.9:3128"
    status, body = gateway.http.post(
        "/devices",
        {"device_id": "d", "webhook_url": hook["url"], "webhook_secret": OWN},
    )
    assert status == 200 and body["results"]["webhook_secret"] == "****", body
    _no_secret(body)
    for path in (
        "/api/sessions/s",
        "/api/sessions",
        "/devices/d/webhook",
        "/devices/s/webhook",
        "/api/dashboard/sessions",
        "/api/dashboard/sessions/s/export",
        "/api/dashboard/sessions/d/export",
    ):
        status, body = gateway.http.get(path)
        assert status == 200, (path, body)
        assert "****" in _no_secret(body), path

    # What the dashboard's config editor does: GET the config, PATCH it back.
    config = gateway.session("s")["config"]
    status, body = gateway.http.call("PATCH", "/api/sessions/s", {"config": config})
    assert status == 200, body
    _no_secret(body)
    status, body = gateway.http.call(
        "PATCH", "/devices/d/webhook", {"webhook_url": hook["url"], "webhook_events": "message"}
    )
    assert status == 200, body
    _no_secret(body)
    with sqlite3.connect(gateway.data_dir / "gowa.db") as db:
        stored = dict(db.execute("SELECT id, config FROM sessions"))
    assert OWN in stored["s"] and PROXY_PASSWORD in stored["s"] and OWN in stored["d"]
    # "" clears a secret (the gateway's webhook_secret then signs).
    hook_without = {**hook, "secret": ""}
    status, body = gateway.http.call(
        "PATCH", "/api/sessions/s", {"config": {"webhooks": [hook_without]}}
    )
    assert status == 200 and body["results"]["config"]["webhooks"][0]["secret"] is None, body


def _outbox_rows(session_dir: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(session_dir / "chats.db") as db:
        return db.execute("SELECT event, secret FROM webhook_deliveries").fetchall()


def _file_bytes(session_dir: Path) -> bytes:
    return b"".join(f.read_bytes() for f in session_dir.iterdir() if f.name.startswith("chats.db"))


def test_global_secret_is_not_stored_and_signs_after_a_restart(gateway_factory):
    global_receiver = WebhookReceiver(GLOBAL)  # down for now: deliveries wait in outboxes
    own_receiver = WebhookReceiver(OWN).start()
    gateway = gateway_factory(
        {
            "GOWA_WEBHOOK_URL": global_receiver.url,
            "GOWA_WEBHOOK_SECRET": GLOBAL,
            "GOWA_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
        }
    )
    try:
        status, body = gateway.http.post("/api/sessions", {"session_id": "g"})
        assert status == 201, body
        own = {"webhooks": [{"url": own_receiver.url, "secret": OWN}]}
        status, body = gateway.http.post("/api/sessions", {"session_id": "o", "config": own})
        assert status == 201, body
        wait_until(own_receiver.items, 30, what="a delivery signed with the session's secret")
        assert all(item.signature_ok for item in own_receiver.items())
        folder = gateway.data_dir / "sessions" / "g"
        wait_until(lambda: _outbox_rows(folder), 30, what="deliveries queued for g")
        gateway.stop()

        assert {secret for _event, secret in _outbox_rows(folder)} == {""}
        assert GLOBAL.encode() not in _file_bytes(folder)
        # A row as versions before this one queued it, the global secret copied in.
        with sqlite3.connect(folder / "chats.db") as db:
            db.execute(
                "INSERT INTO webhook_deliveries (id, event_id, event, url, secret, body, "
                "status, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    "legacy",
                    "legacy-event",
                    "legacy",
                    global_receiver.url,
                    GLOBAL,
                    b'{"event": "legacy", "payload": {}}',
                    "pending",
                    0.0,
                    0.0,
                ),
            )
        db.close()
        assert GLOBAL.encode() in _file_bytes(folder)

        global_receiver.start()
        gateway.start()
        wait_until(
            lambda: global_receiver.items("legacy") and global_receiver.items("session.status"),
            30,
            what="the queued deliveries, the legacy row included",
        )
        assert all(item.signature_ok for item in global_receiver.items())
        wait_until(
            lambda: GLOBAL.encode() not in _file_bytes(folder),
            10,
            what="the legacy copy of the global secret gone from chats.db",
        )
    finally:
        global_receiver.close()
        own_receiver.close()
