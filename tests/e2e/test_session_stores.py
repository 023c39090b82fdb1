"""A session's stores changed behind the gateway's back (operator mistakes, restores,
damaged disks): nothing is lost without a trace, and the API says what happened."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.conftest import SUBPROCESS_WORKERS, EventWatcher, new_phone, pair, session_dir
from tests.procs import Gateway, wait_until

pytestmark = pytest.mark.integration


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
def test_replaced_chats_db_delivers_every_new_event(gateway_factory, sandbox, tmp_path, change):
    """Injected: while the session is stopped, its chats.db is replaced by an older backup
    (the same log, rewound) or deleted (a new log). The registry's cursor is ahead of the
    log either way; the session must come back CONNECTED and every message received after
    the change must reach the event stream."""
    number = {"restored": "4", "deleted": "5"}[change]
    sender, receiver = f"snd{number}", f"rcv{number}"
    new_phone(sandbox, f"1555000041{number}", "Sender")
    new_phone(sandbox, f"1555000042{number}", "Receiver")
    gateway = gateway_factory(env=SUBPROCESS_WORKERS, args=["--sandbox", sandbox.url])
    pair(gateway, sandbox, sender, f"1555000041{number}")
    pair(gateway, sandbox, receiver, f"1555000042{number}")
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
