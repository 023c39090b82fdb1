"""Issue 3's end-to-end flow: real gateway, real workers (neonize), real sandbox network."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.e2e.conftest import is_event, new_phone, pair

pytestmark = pytest.mark.integration

ALICE, BOB = "15550000101", "15550000102"


@pytest.fixture(scope="module")
def paired(sandbox, sandbox_gateway):
    new_phone(sandbox, ALICE, "Alice")
    new_phone(sandbox, BOB, "Bob")
    timings = {
        "a": pair(sandbox_gateway, sandbox, "a", ALICE),
        "b": pair(sandbox_gateway, sandbox, "b", BOB),
    }
    print(f"\nscan -> CONNECTED: {timings}")
    return sandbox_gateway


def _send(gateway, session_id, phone, text):
    status, body = gateway.http.post(
        f"/api/{session_id}/send/message", {"phone": phone, "message": text}
    )
    assert status == 200, body
    return body["results"]["message_id"]


def test_pairing_gives_connected_sessions(paired):
    for session_id, phone in (("a", ALICE), ("b", BOB)):
        session = paired.session(session_id)
        assert session["status"] == "CONNECTED"
        assert session["me"]["jid"] == f"{phone}@s.whatsapp.net"
        assert (paired.data_dir / "sessions" / session_id / "whatsmeow.db").is_file()


def test_message_delivery_and_receipts(paired, events):
    started = time.monotonic()
    message_id = _send(paired, "a", BOB, "hello bob")
    received = events.wait(is_event("message", "b", id=message_id), 5, "B's message event")
    print(f"\nsend -> receive: {time.monotonic() - started:.3f} s")
    assert received["payload"]["body"] == "hello bob"
    assert received["payload"]["from"] == f"{ALICE}@s.whatsapp.net"
    assert received["device_id"] == f"{BOB}@s.whatsapp.net"

    def ack(kind):
        return lambda e: (
            e["event"] == "message.ack"
            and e["session_id"] == "a"
            and message_id in e["payload"]["ids"]
            and e["payload"]["receipt_type"] == kind
        )

    events.wait(ack("delivered"), 5, "delivery receipt at A")
    status, body = paired.http.post(f"/api/b/message/{message_id}/read", {"phone": ALICE})
    assert status == 200, body
    events.wait(ack("read"), 5, "read receipt at A")


def test_message_to_a_switched_off_phone_waits_at_the_server(paired, sandbox):
    dave = new_phone(sandbox, "15550000104", "Dave")
    status, body = sandbox.api("POST", f"/sim/phones/{dave}/devices", {})
    assert status == 201, body
    _send(paired, "a", dave, "are you there?")
    _send(paired, "a", dave, "still there?")
    status, phone = sandbox.api("GET", f"/sim/phones/{dave}")
    assert status == 200, phone
    # Encrypted for the device (whatsmeow fetched its bundle), held for its next login.
    assert [(d["device"], d["connected"], d["queued"]) for d in phone["devices"]] == [(1, False, 2)]


def test_unprefixed_route_with_device_header(paired, events):
    status, body = paired.http.post(
        "/send/message", {"phone": ALICE, "message": "via header"}, headers={"X-Device-Id": "b"}
    )
    assert status == 200, body
    message_id = body["results"]["message_id"]
    events.wait(is_event("message", "a", id=message_id), 5, "A's message event")


def test_killed_worker_reconnects_without_new_qr(paired, events):
    pid = paired.session("a")["worker"]["pid"]
    os.kill(pid, signal.SIGKILL)
    paired.wait_pid("a", not_pid=pid, timeout=20)
    session = paired.wait_status("a", {"CONNECTED"}, timeout=20)
    assert session["worker"]["pid"] != pid
    assert not events.find(lambda e: e["event"] == "session.qr" and e["session_id"] == "a")


def test_dropped_connections_reconnect(paired, sandbox, events):
    status, _ = sandbox.api("POST", "/sim/faults", {"drop_connections": True})
    assert status == 200
    events.wait(is_event("session.status", "b", status="DISCONNECTED"), 10, "B disconnected")
    events.wait(
        lambda e: (
            is_event("session.status", "b", status="CONNECTED")(e)
            and e["payload"].get("previous") == "DISCONNECTED"
        ),
        20,
        "B reconnected",
    )
    sandbox.api("POST", "/sim/faults", {})
    paired.wait_status("a", {"CONNECTED"}, timeout=20)


def test_message_to_stopped_session_arrives_after_start(paired, events):
    status, _ = paired.http.post("/api/sessions/b/stop")
    assert status == 200
    message_id = _send(paired, "a", BOB, "while you were away")
    time.sleep(0.5)
    status, _ = paired.http.post("/api/sessions/b/start")
    assert status == 200
    received = events.wait(is_event("message", "b", id=message_id), 20, "queued message at B")
    assert received["payload"]["body"] == "while you were away"


def test_unlink_from_phone_logs_out(paired, sandbox, events):
    carol = new_phone(sandbox, "15550000103", "Carol")
    pair(paired, sandbox, "c", carol)
    status, phone = sandbox.api("GET", f"/sim/phones/{carol}")
    device = phone["devices"][0]["device"]
    status, body = sandbox.api("POST", f"/sim/phones/{carol}/unlink", {"device": device})
    assert status == 200, body
    session = paired.wait_status("c", {"LOGGED_OUT"}, timeout=15)
    assert session["me"] is None
    # Logging in again gives a fresh QR.
    status, body = paired.http.get("/api/c/app/login")
    assert status == 200 and body["results"]["qr_code"]


def test_login_of_connected_session_is_refused(paired):
    status, body = paired.http.get("/api/a/app/login")
    assert (status, body["code"]) == (409, "ALREADY_LOGGED_IN")


def test_app_status_and_devices(paired):
    status, body = paired.http.get("/api/a/app/status")
    assert status == 200
    assert body["results"]["is_logged_in"] and body["results"]["jid"] == f"{ALICE}@s.whatsapp.net"
    status, body = paired.http.get("/devices/a/status")
    assert status == 200
    assert body["results"] == {"device_id": "a", "is_connected": True, "is_logged_in": True}


def test_login_follows_the_qr_events_without_polling_the_worker(paired, events):
    status, body = paired.http.post("/api/sessions", {"session_id": "qrev", "start": False})
    assert status == 201, body
    status, body = paired.http.get("/api/qrev/app/login")
    assert status == 200, body
    shown = events.wait(is_event("session.qr", "qrev"), 10, "the session.qr event")
    assert body["results"]["qr_code"] == shown["payload"]["qr_code"]
    assert 0 < body["results"]["qr_duration"] <= shown["payload"]["qr_duration"]
    status, metrics = paired.http.get("/metrics")
    assert status == 200
    assert b'gowa_worker_request_duration_seconds_count{command="GetStatus"}' not in metrics
    assert paired.http.call("DELETE", "/api/sessions/qrev")[0] == 200


def test_qr_png_is_served(paired, sandbox):
    status, _ = paired.http.post("/api/sessions", {"session_id": "qr"})
    status, body = paired.http.get("/api/qr/app/login")
    assert status == 200
    link = body["results"]["qr_link"]
    status, png = paired.http.get(link.removeprefix(paired.http.base))
    assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"


def test_api_reconnect_gives_a_fresh_connection(paired, events):
    pid = paired.session("b")["worker"]["pid"]
    status, body = paired.http.get("/api/b/app/reconnect")
    assert status == 200, body
    paired.wait_pid("b", not_pid=pid, timeout=20)
    session = paired.wait_status("b", {"CONNECTED"}, timeout=20)
    assert session["me"]["jid"] == f"{BOB}@s.whatsapp.net"
    message_id = _send(paired, "a", BOB, "after reconnect")
    events.wait(is_event("message", "b", id=message_id), 10, "message after reconnect")
