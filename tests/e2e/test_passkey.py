"""Passkey pairing: WhatsApp asks the linking device for the account's passkey.

The sandbox phone scans the session's QR code as an account that protects linking with a
passkey: the real whatsmeow in the worker gets ``passkey_prologue_request``, voids its QR
codes and reports ``passkey-request`` on its QR channel. neonize cannot answer it, so the
session must stop with ``PASSKEY_REQUIRED`` instead of showing codes that never link.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import is_event, new_phone
from tests.procs import wait_until

pytestmark = pytest.mark.integration


def test_passkey_request_stops_the_session_with_passkey_required(sandbox_gateway, sandbox, events):
    gateway = sandbox_gateway
    phone = new_phone(sandbox, "15550000701", "Pat")
    status, body = gateway.http.post("/api/sessions", {"session_id": "pk"})
    assert status == 201, body
    status, body = gateway.http.get("/api/pk/app/login")
    assert status == 200, body
    qr = body["results"]["qr_code"]

    status, body = sandbox.api("POST", f"/sim/phones/{phone}/scan", {"qr": qr, "passkey": True})
    assert status == 202, body
    assert body["passkey_request"]["rpId"] == "whatsapp.com"

    notice = events.wait(
        is_event("session.passkey_required", "pk", code="PASSKEY_REQUIRED"),
        20,
        "the session.passkey_required event",
    )
    assert notice["payload"]["message"].startswith("PASSKEY_REQUIRED: ")
    session = wait_until(
        lambda: (
            (s := gateway.session("pk"))["status"] == "STOPPED" and not s["worker"]["pid"] and s
        ),
        20,
        what="the session to stop",
    )
    assert session["error"].startswith("PASSKEY_REQUIRED: ") and session["me"] is None
    assert events.find(
        lambda e: (
            e["event"] == "session.status"
            and e["session_id"] == "pk"
            and e["payload"]["status"] == "STOPPED"
            and (e["payload"]["error"] or "").startswith("PASSKEY_REQUIRED: ")
        )
    )
    # No device was linked, and the voided QR code no longer links anything.
    assert sandbox.api("GET", f"/sim/phones/{phone}")[1]["devices"] == []
    status, body = sandbox.api("POST", f"/sim/phones/{phone}/scan", {"qr": qr})
    assert status == 404, body

    # Starting again shows fresh codes, and an account without a passkey links as usual.
    status, body = gateway.http.get("/api/pk/app/login")
    assert status == 200, body
    assert body["results"]["qr_code"] != qr
    status, body = sandbox.api(
        "POST", f"/sim/phones/{phone}/scan", {"qr": body["results"]["qr_code"]}
    )
    assert status == 200, body
    session = gateway.wait_status("pk", {"CONNECTED"}, timeout=20)
    assert session["me"]["jid"] == f"{phone}@s.whatsapp.net" and session["error"] is None
