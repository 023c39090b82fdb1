"""A session's stores changed behind the gateway's back (operator mistakes, restores,
damaged disks): nothing is lost without a trace, and the API says what happened."""

from __future__ import annotations

import json
import os
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gowa_py.storage import chats_schema
from tests.e2e.conftest import SUBPROCESS_WORKERS, EventWatcher, new_phone, pair, session_dir
from tests.procs import Gateway, wait_until
from tests.receiver import WebhookReceiver

pytestmark = pytest.mark.integration


@pytest.fixture
def webhooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver("s3cret").start()
    yield receiver
    receiver.close()


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _send(gateway: Gateway, sender: str, to: str, texts: list[str]) -> list[str]:
    ids = []
    for text in texts:
        status, body = gateway.http.post(
            f"/api/{sender}/send/message", {"phone": to, "message": text}
        )
        assert status == 200, body
        ids.append(body["results"]["message_id"])
    return ids


def _wait_received(watcher: EventWatcher, session_id: str, ids: list[str]) -> None:
    def received() -> set[str]:
        return {
            e["payload"]["id"]
            for e in watcher.find(
                lambda e: e["event"] == "message" and e["session_id"] == session_id
            )
        }

    wait_until(lambda: received() >= set(ids), 20, what=f"{len(ids)} messages at {session_id}")


def _restart(gateway: Gateway, session_id: str) -> dict:
    status, body = gateway.http.post(f"/api/sessions/{session_id}/start")
    assert status == 200, body
    return gateway.wait_status(session_id, {"CONNECTED"}, timeout=30)


@pytest.mark.parametrize("change", ["restored", "deleted"])
def test_replaced_chats_db_delivers_every_new_event(
    gateway_factory, sandbox, tmp_path, change, webhooks
):
    """Injected: while the session is stopped, its chats.db is replaced by an older backup
    (the same log, rewound) or deleted (a new log). The registry's cursor is ahead of the
    log either way; the session must come back CONNECTED and every message received after
    the change must reach the event stream and the session's webhook."""
    number = {"restored": "4", "deleted": "5"}[change]
    sender, receiver = f"snd{number}", f"rcv{number}"
    new_phone(sandbox, f"1555000041{number}", "Sender")
    new_phone(sandbox, f"1555000042{number}", "Receiver")
    env = {**SUBPROCESS_WORKERS, "GOWA_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8"}
    gateway = gateway_factory(env=env, args=["--sandbox", sandbox.url])
    pair(gateway, sandbox, sender, f"1555000041{number}")
    pair(gateway, sandbox, receiver, f"1555000042{number}")
    hook = {"url": webhooks.url, "secret": "s3cret", "events": ["message"]}
    status, body = gateway.http.call(
        "PATCH", f"/api/sessions/{receiver}", {"config": {"webhooks": [hook]}}
    )
    assert status == 200, body
    chats = session_dir(gateway, receiver) / "chats.db"
    backup = tmp_path / "backup.db"
    watcher = EventWatcher(gateway.http.base.replace("http", "ws") + "/api/dashboard/events")
    try:
        with sqlite3.connect(chats) as source, sqlite3.connect(backup) as copy:
            source.backup(copy)
        before = _send(gateway, sender, f"1555000042{number}", [f"before {n}" for n in range(6)])
        _wait_received(watcher, receiver, before)
        assert gateway.http.post(f"/api/sessions/{receiver}/stop")[0] == 200
        mark = len(watcher.find(lambda e: True))
        _remove_db(chats)
        if change == "restored":
            os.replace(backup, chats)
        session = _restart(gateway, receiver)
        assert session["error"] is None
        after = _send(gateway, sender, f"1555000042{number}", [f"after {n}" for n in range(3)])
        _wait_received(watcher, receiver, after)
        wait_until(
            lambda: {r.body["payload"]["id"] for r in webhooks.items("message")} >= set(after),
            20,
            what="the messages after the change at the webhook receiver",
        )
        # Recorded in the file the session has now, not in the replaced one the gateway
        # had open (whose rows would be lost when it closes).
        with sqlite3.connect(chats) as db:
            outbox = db.execute("SELECT body FROM webhook_deliveries").fetchall()
        assert set(after) <= {json.loads(body)["payload"]["id"] for (body,) in outbox}
        replaced = watcher.wait(
            lambda e: e["event"] == "session.event_log_replaced" and e["session_id"] == receiver,
            5,
            "session.event_log_replaced",
        )
        assert ("rewound" if change == "restored" else "different") in replaced["payload"]["reason"]
        # The worker's own status events (they name the account) came through too.
        statuses = [
            e["payload"]
            for e in watcher.find(lambda e: True)[mark:]
            if e["event"] == "session.status" and e["session_id"] == receiver
        ]
        assert any(
            s["status"] == "CONNECTED"
            and (s.get("me") or {}).get("jid", "").startswith(f"1555000042{number}@")
            for s in statuses
        ), statuses
    finally:
        watcher.close()


def test_damaged_chats_db_fails_the_session_with_the_cause(gateway_factory, sandbox):
    """Injected: random bytes in chats.db. The worker cannot open it, so restarting cannot
    help: the session is FAILED at once, and its error (not only worker.log) says why."""
    gateway = gateway_factory(env=SUBPROCESS_WORKERS, args=["--sandbox", sandbox.url])
    status, body = gateway.http.post("/api/sessions", {"session_id": "garbled", "start": False})
    assert status == 201, body
    folder = session_dir(gateway, "garbled")
    (folder / "chats.db").write_bytes(random.Random(14).randbytes(64 * 1024))
    assert gateway.http.post("/api/sessions/garbled/start")[0] == 200
    session = gateway.wait_status("garbled", {"FAILED"}, timeout=30)
    assert "chats.db cannot be opened (file is not a database)" in session["error"]
    assert session["worker"]["pid"] is None
    assert not (folder / "exit-reason").exists()
    # As the error advises: moved away, the session starts with an empty chat history.
    (folder / "chats.db").rename(folder / "chats.db.damaged")
    assert gateway.http.post("/api/sessions/garbled/start")[0] == 200
    session = gateway.wait_status("garbled", {"SCAN_QR_CODE"}, timeout=30)
    assert session["error"] is None


def test_chats_db_from_a_newer_release_fails_the_session_with_the_cause(gateway_factory, sandbox):
    """Injected: a chats.db whose schema version is past this code's last migration (a
    downgrade after a newer release ran). The worker refuses it rather than misread or
    drop the newer tables: FAILED at once, the error says what happened."""
    gateway = gateway_factory(env=SUBPROCESS_WORKERS, args=["--sandbox", sandbox.url])
    status, body = gateway.http.post("/api/sessions", {"session_id": "future", "start": False})
    assert status == 201, body
    path = session_dir(gateway, "future") / "chats.db"
    version = len(chats_schema.MIGRATIONS) + 1
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {version}")
    connection.close()
    assert gateway.http.post("/api/sessions/future/start")[0] == 200
    session = gateway.wait_status("future", {"FAILED"}, timeout=30)
    assert f"has schema version {version}" in session["error"], session["error"]
    assert "written by a newer release" in session["error"]
    assert session["worker"]["pid"] is None


@pytest.mark.parametrize("keep", [0, 3])
def test_truncated_key_store_says_what_was_lost(gateway_factory, sandbox, keep):
    """Injected: whatsmeow.db truncated while the session is stopped. Cut to nothing,
    whatsmeow finds no device and shows a QR code: the session must not keep showing the
    old account beside it, and must say the login was lost. Cut to a third, the file is
    damaged: FAILED at once with the cause, not DISCONNECTED retrying forever."""
    gateway = gateway_factory(env=SUBPROCESS_WORKERS, args=["--sandbox", sandbox.url])
    phone, session_id = f"1555000043{keep}", f"trunc{keep}"
    new_phone(sandbox, phone, "Truncated")
    pair(gateway, sandbox, session_id, phone)
    watcher = EventWatcher(gateway.http.base.replace("http", "ws") + "/api/dashboard/events")
    try:
        assert gateway.http.post(f"/api/sessions/{session_id}/stop")[0] == 200
        store = session_dir(gateway, session_id) / "whatsmeow.db"
        for suffix in ("-wal", "-shm"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
        with store.open("r+b") as file:
            file.truncate(store.stat().st_size // keep if keep else 0)
        assert gateway.http.post(f"/api/sessions/{session_id}/start")[0] == 200
        if keep:
            session = gateway.wait_status(session_id, {"FAILED"}, timeout=30)
            assert "whatsmeow.db cannot be opened" in session["error"]
            assert "malformed" in session["error"]
            assert session["worker"]["pid"] is None
            return
        session = gateway.wait_status(session_id, {"SCAN_QR_CODE"}, timeout=30)
        assert session["me"] is None
        assert f"the login of {phone}@s.whatsapp.net was lost" in session["error"]
        lost = watcher.wait(
            lambda e: e["event"] == "session.login_lost" and e["session_id"] == session_id,
            5,
            "session.login_lost",
        )
        assert lost["payload"]["jid"] == f"{phone}@s.whatsapp.net"
    finally:
        watcher.close()


def test_a_go_runtime_death_gives_its_cause(gateway_factory, sandbox):
    """Injected: a memory ceiling too low for Go's runtime to start. Go dies printing
    "fatal error: ..." to stderr, past Python, so the worker leaves no exit reason: the
    supervisor must find it in worker.log and quote it in the FAILED error."""
    env = {**SUBPROCESS_WORKERS, "GOWA_WORKER_MEMORY_MB": "64"}
    gateway = gateway_factory(env=env, args=["--sandbox", sandbox.url])
    status, body = gateway.http.post("/api/sessions", {"session_id": "starved"})
    assert status == 201, body
    session = gateway.wait_status("starved", {"FAILED"}, timeout=60)
    assert "fatal error: runtime: cannot allocate memory" in session["error"], session["error"]
