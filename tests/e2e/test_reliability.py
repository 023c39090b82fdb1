"""Supervisor and worker behaviour that WAHA/Evolution users miss: QR expiry, pairing limits,
stable event ids, no duplicate events after a restart."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.e2e.conftest import SUBPROCESS_WORKERS, EventWatcher, new_phone, pair
from tests.procs import wait_until

pytestmark = pytest.mark.integration


def test_unscanned_session_stops_asking_after_qr_limit(gateway_factory, sandbox):
    """Injected: nobody scans. With qr_limit=1 the session stops when the second code would
    be shown (whatsmeow shows the first one for 60 s) and says why; a start gives new codes."""
    gateway = gateway_factory(
        env={**SUBPROCESS_WORKERS, "GOWA_QR_LIMIT": "1"}, args=["--sandbox", sandbox.url]
    )
    gateway.http.post("/api/sessions", {"session_id": "idle"})
    status, body = gateway.http.get("/api/idle/app/login")
    assert status == 200
    first = body["results"]["qr_code"]
    session = wait_until(
        lambda: (
            (s := gateway.session("idle"))["status"] == "STOPPED"
            and s["worker"]["pid"] is None
            and s
        ),
        90,
        what="the unscanned session to stop",
    )
    assert "no QR code was scanned" in session["error"]
    status, body = gateway.http.get("/api/idle/app/login")
    assert status == 200 and body["results"]["qr_code"] != first


def test_pairing_storms_are_bounded(gateway_factory, sandbox):
    gateway = gateway_factory(
        env={**SUBPROCESS_WORKERS, "GOWA_MAX_PAIRING": "1"}, args=["--sandbox", sandbox.url]
    )
    for session_id in ("p1", "p2"):
        gateway.http.post("/api/sessions", {"session_id": session_id, "start": False})
    assert gateway.http.get("/api/p1/app/login")[0] == 200
    status, body = gateway.http.get("/api/p2/app/login")
    assert (status, body["code"]) == (429, "TOO_MANY_PAIRING")
    # The session already pairing may ask again.
    assert gateway.http.get("/api/p1/app/login")[0] == 200


def test_restart_never_emits_an_event_twice(gateway_factory, sandbox, tmp_path):
    """Injected: kill -9 of the receiving worker right after messages arrived. whatsmeow may
    hand the same messages over again after the restart; each must reach listeners once,
    under the same event id."""
    gateway = gateway_factory(env=SUBPROCESS_WORKERS, args=["--sandbox", sandbox.url])
    new_phone(sandbox, "15550000201", "Ann")
    new_phone(sandbox, "15550000202", "Ben")
    pair(gateway, sandbox, "ann", "15550000201")
    pair(gateway, sandbox, "ben", "15550000202")
    watcher = EventWatcher(gateway.http.base.replace("http", "ws") + "/api/dashboard/events")
    try:
        sent = []
        for n in range(20):
            status, body = gateway.http.post(
                "/api/ann/send/message", {"phone": "15550000202", "message": f"m{n}"}
            )
            assert status == 200
            sent.append(body["results"]["message_id"])

        def received():
            return {
                e["payload"]["id"]
                for e in watcher.find(
                    lambda e: e["event"] == "message" and e["session_id"] == "ben"
                )
            }

        wait_until(lambda: received() >= set(sent), 15, what="20 messages at ben")
        pid = gateway.session("ben")["worker"]["pid"]
        os.kill(pid, signal.SIGKILL)
        gateway.wait_pid("ben", not_pid=pid)
        gateway.wait_status("ben", {"CONNECTED"}, timeout=20)
        status, body = gateway.http.post(
            "/api/ann/send/message", {"phone": "15550000202", "message": "after"}
        )
        wait_until(lambda: body["results"]["message_id"] in received(), 15, what="last message")
        messages = watcher.find(lambda e: e["event"] == "message" and e["session_id"] == "ben")
        ids = [e["payload"]["id"] for e in messages]
        assert len(ids) == len(set(ids)) == 21
        assert len({e["id"] for e in messages}) == 21
    finally:
        watcher.close()


def test_message_in_flight_to_a_dying_worker_is_not_lost(gateway_factory, sandbox):
    """Injected: the receiving worker is frozen (SIGSTOP) while a message is pushed to its
    socket, then killed (SIGKILL) before it could read it. The sandbox, like WhatsApp,
    holds a message until the device acknowledges it, so the restarted worker gets it."""
    gateway = gateway_factory(env=SUBPROCESS_WORKERS, args=["--sandbox", sandbox.url])
    new_phone(sandbox, "15550000301", "Cat")
    new_phone(sandbox, "15550000302", "Dan")
    pair(gateway, sandbox, "cat", "15550000301")
    pair(gateway, sandbox, "dan", "15550000302")
    watcher = EventWatcher(gateway.http.base.replace("http", "ws") + "/api/dashboard/events")
    try:
        pid = gateway.session("dan")["worker"]["pid"]
        os.kill(pid, signal.SIGSTOP)
        status, body = gateway.http.post(
            "/api/cat/send/message", {"phone": "15550000302", "message": "in flight"}
        )
        assert status == 200, body
        message_id = body["results"]["message_id"]
        time.sleep(0.5)
        os.kill(pid, signal.SIGKILL)
        gateway.wait_pid("dan", not_pid=pid, timeout=20)
        event = watcher.wait(
            lambda e: (
                e["event"] == "message"
                and e["session_id"] == "dan"
                and e["payload"]["id"] == message_id
            ),
            30,
            "the in-flight message at dan",
        )
        assert event["payload"]["body"] == "in flight"
    finally:
        watcher.close()
