"""A session stopped by an error shows why, readably, in Chromium: a sandbox phone whose
account protects linking with a passkey scans the QR code, the worker stops the session
with PASSKEY_REQUIRED, and the dashboard says so on the session's page and in the
sessions table, and no longer shows the voided code."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import Sandbox, shot
from tests.procs import Gateway

pytestmark = pytest.mark.browser


def test_a_passkey_request_shows_as_a_readable_error(
    page, sandbox_gateway: Gateway, sandbox: Sandbox
) -> None:
    gateway = sandbox_gateway
    phone = "15550000741"
    status, body = sandbox.http.post("/sim/phones", {"phone": phone, "push_name": "Pia"})
    assert status == 201, body
    status, body = gateway.http.post("/api/sessions", {"session_id": "ui-pk"})
    assert status == 201, body
    try:
        page.goto(f"{gateway.http.base}/dashboard/#/sessions/ui-pk")
        qr_image = page.get_by_role("img", name="QR code to link session ui-pk")
        expect(qr_image).to_be_visible(timeout=45_000)
        notice = page.locator("#session-error")
        expect(notice).to_be_hidden()

        status, body = gateway.http.get("/api/ui-pk/app/login")
        assert status == 200, body
        status, body = sandbox.http.post(
            f"/sim/phones/{phone}/scan", {"qr": body["results"]["qr_code"], "passkey": True}
        )
        assert status == 202, body

        # The page says what happened, without a reload: a labelled alert with the code
        # and the worker's explanation; the voided code is gone.
        expect(page.locator("#session-status .badge")).to_have_text("STOPPED", timeout=20_000)
        expect(notice).to_be_visible()
        expect(notice).to_have_attribute("role", "alert")
        expect(notice.locator(".session-error-label")).to_have_text("Passkey required")
        expect(notice.locator(".session-error-code")).to_have_text("PASSKEY_REQUIRED")
        expect(notice.locator(".session-error-message")).to_have_text(
            re.compile(r"^WhatsApp asked for the account's passkey to link this device")
        )
        expect(qr_image).to_be_hidden()
        expect(page.locator("#qr-note")).to_have_text(re.compile("no longer links"))
        shot(page, "session-passkey-required-1280")

        # The sessions table marks the session, the whole error on hover.
        page.get_by_role("link", name="Sessions", exact=True).first.click()
        chip = page.locator("tr[data-session='ui-pk'] td[data-label='Status'] .error-chip")
        expect(chip).to_have_text("Passkey required")
        expect(chip).to_have_attribute("title", re.compile(r"^PASSKEY_REQUIRED: WhatsApp"))
        expect(chip).to_have_attribute("data-code", "PASSKEY_REQUIRED")

        # Asked for a new code, the session shows one and the notice goes.
        page.locator("tr[data-session='ui-pk'] th a").click()
        page.get_by_role("button", name="Show QR code").click()
        expect(qr_image).to_be_visible(timeout=45_000)
        expect(notice).to_be_hidden()
        assert page.js_errors == []
    finally:
        gateway.http.call("DELETE", "/api/sessions/ui-pk")
