"""The dashboard's API keys panel in Chromium against a real gateway: create a scoped key
(shown once), see it listed without its secret, revoke it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.support import shot

pytestmark = pytest.mark.browser

ADMIN = "panel-admin-key-5c1e"


def test_create_use_and_revoke_a_scoped_key(browser, gateway_factory) -> None:
    gateway = gateway_factory(env={"GOWA_API_KEY": ADMIN})
    http = gateway.http
    for session_id in ("shop", "other"):
        assert http.post("/api/sessions", {"session_id": session_id, "start": False})[0] == 201
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{http.base}/dashboard/#/keys")
        page.get_by_label("API key").fill(ADMIN)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="API keys")).to_be_visible()

        form = page.get_by_role("form", name="New key")
        form.get_by_label("Name (optional)").fill("crm")
        form.get_by_label("shop").check()
        form.get_by_label("Scope").select_option("read")
        form.get_by_role("button", name="Create key").click()
        secret_box = page.get_by_label("The new API key")
        expect(secret_box).to_be_visible()
        secret = secret_box.input_value()
        assert secret.startswith("gowa_")
        row = page.locator("#keys-table tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("crm")
        expect(row).to_contain_text("shop")
        expect(row).to_contain_text("read")
        assert secret not in page.locator("#keys-table").inner_text()
        shot(page, "keys-1280")

        # The key works for its session only, read-only.
        key = {"X-Api-Key": secret}
        assert http.get("/api/sessions/shop", headers=key)[0] == 200
        assert http.get("/api/sessions/other", headers=key)[0] == 403
        assert http.post("/api/sessions/shop/start", headers=key)[0] == 403

        page.get_by_role("button", name="Done").click()
        expect(secret_box).to_have_count(0)
        page.get_by_role("button", name="Revoke key crm").click()
        page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
        expect(page.locator("#keys-table tbody tr")).to_have_count(0)
        assert http.get("/api/sessions/shop", headers=key)[0] == 401
        assert not errors, errors
    finally:
        context.close()
