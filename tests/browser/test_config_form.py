"""The session config form in Chromium against a real gateway: every field of the API's
SessionConfig is edited, saved with the API, read back after a reload; a value the API
refuses shows the API's own message; secrets are never shown."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import shot

pytestmark = pytest.mark.browser

SECRET_A = "first-secret-9d2c"
SECRET_B = "second-secret-41aa"
HOOK_A = "https://hooks.example.test/a"
HOOK_B = "https://hooks.example.test/b"
PROXY = "socks5://proxyuser:proxy-pass-77@127.0.0.1:1080"


def config_of(http, session_id: str) -> dict:
    status, body = http.get(f"/api/sessions/{session_id}")
    assert status == 200, body
    return body["results"]["config"]


def assert_no_secret_on_page(page) -> None:
    html = page.content()
    values = page.evaluate("[...document.querySelectorAll('input, textarea')].map(e => e.value)")
    for secret in (SECRET_A, SECRET_B, "proxy-pass-77"):
        assert secret not in html, secret
        assert not any(secret in value for value in values), secret


def test_config_form_saves_every_field_and_hides_secrets(page, gateway_factory) -> None:
    # Proxies on loopback are refused unless allowed; nothing dials it (the session is stopped).
    gateway = gateway_factory(env={"GOWA_PROXY_ALLOW_NETWORKS": "127.0.0.0/8"})
    http = gateway.http
    hooks = [{"url": HOOK_A, "secret": SECRET_A, "events": ["message"]}]
    body = {"session_id": "cfg", "start": False, "config": {"webhooks": hooks}}
    assert http.post("/api/sessions", body)[0] == 201

    page.goto(f"{http.base}/dashboard/#/sessions/cfg")
    form = page.get_by_role("form", name="Session config", exact=True)
    first = form.get_by_role("group", name="Webhook 1")
    expect(first.get_by_label("URL")).to_have_value(HOOK_A)
    expect(first.get_by_label("Secret", exact=True)).to_have_value("")
    expect(first.get_by_label("Secret", exact=True)).to_have_attribute("type", "password")
    expect(first.get_by_label("message", exact=True)).to_be_checked()
    expect(first.get_by_label("All events")).not_to_be_checked()
    assert_no_secret_on_page(page)

    # Edit every field: a second hook with its own secret and events, the first keeps its
    # secret (field left empty) and gains an event.
    first.get_by_label("message.ack", exact=True).check()
    form.get_by_role("button", name="Add webhook").click()
    second = form.get_by_role("group", name="Webhook 2")
    second.get_by_label("URL").fill(HOOK_B)
    second.get_by_label("Secret", exact=True).fill(SECRET_B)
    second.get_by_label("All events").uncheck()
    second.get_by_label("call.offer", exact=True).check()
    second.get_by_label("group.joined", exact=True).check()
    form.get_by_label("Proxy").fill(PROXY)
    form.get_by_label("Start with the gateway").uncheck()
    form.get_by_label("Idle timeout (seconds)").fill("120")
    form.get_by_label("Mark incoming messages read").check()
    form.get_by_label("Download incoming media").uncheck()
    form.get_by_label("Reject incoming calls").check()
    form.get_by_label("Auto-reply").fill("Away until Monday")
    form.get_by_label("Presence on connect").select_option("unavailable")
    form.get_by_label("Chat history retention (days)").fill("30")
    shot(page, "config-form-1280")
    form.get_by_role("button", name="Save config").click()
    expect(page.locator("#toasts")).to_contain_text("Config saved")

    expected = {
        "webhooks": [
            {"url": HOOK_A, "secret": "****", "events": ["message", "message.ack"]},
            {"url": HOOK_B, "secret": "****", "events": ["call.offer", "group.joined"]},
        ],
        "proxy": "socks5://proxyuser:****@127.0.0.1:1080",
        "auto_start": False,
        "idle_timeout": 120,
        "auto_reply": "Away until Monday",
        "auto_mark_read": True,
        "auto_download_media": False,
        "auto_reject_call": True,
        "presence_on_connect": "unavailable",
        "chat_retention_days": 30,
    }
    assert config_of(http, "cfg") == expected

    # After a reload the form shows what the API holds, secrets still write-only.
    page.reload()
    form = page.get_by_role("form", name="Session config", exact=True)
    first = form.get_by_role("group", name="Webhook 1")
    second = form.get_by_role("group", name="Webhook 2")
    expect(second.get_by_label("URL")).to_have_value(HOOK_B)
    expect(second.get_by_label("Secret", exact=True)).to_have_value("")
    expect(second.get_by_label("call.offer", exact=True)).to_be_checked()
    expect(second.get_by_label("message", exact=True)).not_to_be_checked()
    expect(first.get_by_label("message.ack", exact=True)).to_be_checked()
    expect(form.get_by_label("Proxy")).to_have_value("socks5://proxyuser:****@127.0.0.1:1080")
    expect(form.get_by_label("Start with the gateway")).not_to_be_checked()
    expect(form.get_by_label("Idle timeout (seconds)")).to_have_value("120")
    expect(form.get_by_label("Mark incoming messages read")).to_be_checked()
    expect(form.get_by_label("Download incoming media")).not_to_be_checked()
    expect(form.get_by_label("Reject incoming calls")).to_be_checked()
    expect(form.get_by_label("Auto-reply")).to_have_value("Away until Monday")
    expect(form.get_by_label("Presence on connect")).to_have_value("unavailable")
    expect(form.get_by_label("Chat history retention (days)")).to_have_value("30")
    page.get_by_text("Advanced: raw JSON").click()
    expect(page.locator("#config-json")).to_have_value(re.compile(r'"secret": "\*\*\*\*"'))
    assert_no_secret_on_page(page)

    # A value the API refuses: its message, next to the form, on the field it names.
    status, refused = http.call("PATCH", "/api/sessions/cfg", {"config": {"idle_timeout": 30}})
    assert status == 422 or status == 400, refused
    form.get_by_label("Idle timeout (seconds)").fill("30")
    form.get_by_role("button", name="Save config").click()
    expect(page.locator("#config-error")).to_have_text(refused["message"])
    expect(form.get_by_label("Idle timeout (seconds)")).to_have_attribute("aria-invalid", "true")
    second.get_by_label("URL").fill("ftp://hooks.example.test/b")
    form.get_by_label("Idle timeout (seconds)").fill("not a number")
    form.get_by_role("button", name="Save config").click()
    expect(page.locator("#config-error")).to_contain_text("$.config.webhooks[1].url")
    expect(second.get_by_label("URL")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("Idle timeout (seconds)")).not_to_have_attribute(
        "aria-invalid", "true"
    )
    shot(page, "config-form-error-1280")
    assert config_of(http, "cfg") == expected

    # Reset brings the saved values back; removing a secret is explicit.
    form.get_by_role("button", name="Reset").click()
    expect(page.locator("#config-error")).to_have_text("")
    expect(form.get_by_label("Idle timeout (seconds)")).to_have_value("120")
    form.get_by_role("group", name="Webhook 1").get_by_label("Remove the secret").check()
    form.get_by_role("group", name="Webhook 2").get_by_role("button", name="Remove webhook").click()
    form.get_by_role("button", name="Save config").click()
    expect(page.locator("#toasts")).to_contain_text("Config saved")
    hooks = config_of(http, "cfg")["webhooks"]
    assert hooks == [{"url": HOOK_A, "secret": None, "events": ["message", "message.ack"]}]
    assert page.js_errors == []
