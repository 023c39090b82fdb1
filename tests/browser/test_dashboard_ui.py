"""The dashboard as an operator uses it, in Chromium, against a real gateway and sandbox."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.support import shot
from tests.procs import Gateway

pytestmark = pytest.mark.browser

QR_WAIT_S = 45


def dashboard(page, gateway: Gateway, route: str = "/") -> None:
    page.goto(f"{gateway.http.base}/dashboard/#{route}")


def wait_for_qr(gateway: Gateway, session_id: str) -> None:
    """The session reaches SCAN_QR_CODE (the test's sandbox always lets a worker pair)."""
    deadline = time.monotonic() + QR_WAIT_S
    session = gateway.session(session_id)
    while time.monotonic() < deadline:
        session = gateway.session(session_id)
        if session["status"] == "SCAN_QR_CODE":
            return
        time.sleep(0.5)
    raise AssertionError(
        f"session {session_id} showed no QR within {QR_WAIT_S} s "
        f"(status {session['status']}: {session['error']})"
    )


def canvas_has_ink(page, selector: str) -> bool:
    return page.evaluate(
        """(selector) => {
            const canvas = document.querySelector(`${selector} canvas`);
            if (!canvas || !canvas.width) return false;
            const pixels = canvas.getContext("2d")
                .getImageData(0, 0, canvas.width, canvas.height).data;
            for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) return true;
            return false;
        }""",
        selector,
    )


def test_create_watch_and_delete_a_session(page, sandbox_gateway: Gateway) -> None:
    dashboard(page, sandbox_gateway, "/sessions")
    expect(page.locator("#sandbox-banner")).to_be_visible()
    expect(page.locator("#sandbox-banner")).to_contain_text("SANDBOX")
    expect(page.locator("#live-state")).to_have_text(re.compile("live"))

    page.get_by_role("button", name="New session").click()
    dialog = page.get_by_role("dialog", name="New session")
    dialog.get_by_label("Session id").fill("ui-one")
    dialog.get_by_label("Webhook URL (optional)").fill("https://hooks.example.test/in")
    dialog.get_by_role("button", name="Create").click()

    expect(page).to_have_url(re.compile(r"#/sessions/ui-one$"))
    expect(page.locator("#session-status .badge")).to_have_text(
        re.compile("STARTING|SCAN_QR_CODE|DISCONNECTED|CONNECTED")
    )
    expect(page.locator("#config-json")).to_have_value(re.compile("hooks.example.test"))
    expect(page.locator("#event-list")).to_contain_text("session.status")

    # Pausing holds new events back until resumed.
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Resume")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Resume").click()
    page.get_by_label("Logs", exact=True).uncheck()
    expect(page.locator("#event-list li[data-event='log']")).to_have_count(0)
    page.get_by_label("Logs", exact=True).check()
    expect(page.locator("#deliveries-panel")).to_be_visible()
    shot(page, "session-page-1280")

    page.get_by_role("link", name="Sessions", exact=True).first.click()
    row = page.locator("tr[data-session='ui-one']")
    expect(row.locator(".badge")).to_be_visible()
    expect(row.locator("td[data-label='PSS']")).to_have_text(re.compile("MiB|KiB"), timeout=15000)
    shot(page, "sessions-1280")

    page.get_by_role("link", name="Overview", exact=True).click()
    expect(page.locator("#stat-sessions")).to_have_text("1")
    expect(page.locator("#chart-memory")).to_have_attribute(
        "data-points", re.compile(r"^[1-9]\d*$"), timeout=15000
    )
    expect(page.locator("#chart-connected")).to_have_attribute(
        "data-points", re.compile(r"^[1-9]\d*$")
    )
    expect(page.locator("#chart-messages")).to_have_attribute(
        "data-points", re.compile(r"^(2[4-9]|[3-9]\d)$")
    )
    page.wait_for_timeout(300)
    for chart in ("#chart-memory", "#chart-messages", "#chart-connected"):
        assert canvas_has_ink(page, chart), chart
    shot(page, "overview-1280")

    page.get_by_role("link", name="Sessions", exact=True).click()
    row.get_by_role("button", name="Delete session ui-one").click()
    confirm = page.get_by_role("dialog", name="Delete ui-one?")
    confirm.get_by_role("button", name="Cancel").click()
    expect(row).to_be_visible()
    row.get_by_role("button", name="Delete session ui-one").click()
    confirm.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0, timeout=20000)
    status, _ = sandbox_gateway.http.get("/api/sessions/ui-one")
    assert status == 404
    assert page.js_errors == []


def test_qr_scan_with_sandbox_phone_connects_without_reload(page, sandbox_gateway: Gateway):
    status, body = sandbox_gateway.http.post("/api/sessions", {"session_id": "ui-scan"})
    assert status == 201, body
    try:
        scan_and_watch(page, sandbox_gateway)
    finally:
        sandbox_gateway.http.call("DELETE", "/api/sessions/ui-scan")


def scan_and_watch(page, sandbox_gateway: Gateway) -> None:
    dashboard(page, sandbox_gateway, "/sessions/ui-scan")
    page.evaluate("window.__sameDocument = true")
    wait_for_qr(sandbox_gateway, "ui-scan")

    qr = page.get_by_role("img", name="QR code to link session ui-scan")
    expect(qr).to_be_visible(timeout=15000)
    expect(qr).to_have_attribute("src", re.compile("^blob:"))
    shot(page, "session-qr-1280")

    page.get_by_role("button", name="Scan with a sandbox phone").click()
    expect(page.locator("#session-status .badge")).to_have_text("CONNECTED", timeout=60000)
    expect(page.locator("#login-panel")).to_be_hidden()
    expect(page.locator("#account")).to_contain_text("@s.whatsapp.net")
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    shot(page, "session-connected-1280")

    page.get_by_role("link", name="Sessions", exact=True).first.click()
    row = page.locator("tr[data-session='ui-scan']")
    expect(row.locator(".badge")).to_have_text("CONNECTED")
    expect(row.locator("td[data-label='Phone']")).to_have_text(re.compile(r"^\+\d+"))
    page.get_by_role("link", name="Overview", exact=True).click()
    expect(page.locator("#stat-connected")).to_have_text("1")
    assert page.js_errors == []


def test_narrow_screen_and_keyboard(page, sandbox_gateway: Gateway) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    dashboard(page, sandbox_gateway, "/sessions")
    expect(page.locator("#live-state")).to_have_text(re.compile("live"))
    # Keyboard only: the skip link, then tab to "New session" and open the dialog.
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    new_session = page.get_by_role("button", name="New session")
    for _ in range(10):
        page.keyboard.press("Tab")
        if new_session.evaluate("el => el === document.activeElement"):
            break
    expect(new_session).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="New session")
    expect(dialog.get_by_label("Session id")).to_be_focused()
    page.keyboard.type("narrow")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#/sessions/narrow$"))
    for route, name in (("/sessions", "sessions-390"), ("/", "overview-390")):
        dashboard(page, sandbox_gateway, route)
        page.wait_for_timeout(800)
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= 390, f"{route} scrolls sideways at 390 px ({width} px wide)"
        shot(page, name)
    dashboard(page, sandbox_gateway, "/sessions/narrow")
    expect(page.locator("#session-status .badge")).to_be_visible()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    shot(page, "session-390")
    assert sandbox_gateway.http.call("DELETE", "/api/sessions/narrow")[0] == 200


def test_login_page_with_api_key(browser, gateway_factory) -> None:
    key = "dashboard-test-key-7f3a"
    gateway = gateway_factory(env={"GOWA_API_KEY": key})
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        dashboard(page, gateway, "/sessions")
        form = page.get_by_role("form", name="Log in to gowa-py")
        expect(form).to_be_visible()
        expect(page.get_by_label("API key")).to_be_focused()
        shot(page, "login-1280")

        page.get_by_label("API key").fill("wrong")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong credentials.")

        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
        expect(page.locator("#live-state")).to_have_text(re.compile("live"))

        # The cookie works for state-changing calls (with the CSRF header the page adds).
        page.get_by_role("button", name="New session").click()
        page.get_by_role("dialog").get_by_label("Session id").fill("after-login")
        page.get_by_label("Start now").uncheck()
        page.get_by_role("button", name="Create").click()
        expect(page).to_have_url(re.compile(r"#/sessions/after-login$"))

        (cookie,) = [c for c in context.cookies() if c["name"] == "gowa_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert key not in cookie["value"] and key not in page.url
        stored = page.evaluate("JSON.stringify({...localStorage, ...sessionStorage})")
        assert key not in stored
        assert key not in page.evaluate("document.cookie")

        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_label("API key")).to_be_visible()
        page.reload()
        expect(page.get_by_label("API key")).to_be_visible()
    finally:
        context.close()


# Counts the page's WebSockets and its running setInterval timers, installed before the
# dashboard's modules run, so a test can see what a view leaves behind when it is left.
TRACK_RESOURCES = """
(() => {
    const sockets = [];
    const NativeSocket = window.WebSocket;
    window.WebSocket = class extends NativeSocket {
        constructor(...args) {
            super(...args);
            sockets.push(this);
        }
    };
    const intervals = new Set();
    const nativeSet = window.setInterval.bind(window);
    const nativeClear = window.clearInterval.bind(window);
    window.setInterval = (...args) => {
        const timer = nativeSet(...args);
        intervals.add(timer);
        return timer;
    };
    window.clearInterval = (timer) => {
        intervals.delete(timer);
        nativeClear(timer);
    };
    window.__resources = () => ({
        intervals: intervals.size,
        sessionSockets: sockets.filter((s) => s.url.includes("session_id=")
            && s.readyState <= WebSocket.OPEN).length,
    });
})();
"""


def test_leaving_a_session_view_stops_its_panels(page, sandbox_gateway: Gateway) -> None:
    """Every panel's timer and the page's event stream end with the view: after moving to a
    view without timers (API keys), and after a session id that does not exist."""
    status, body = sandbox_gateway.http.post(
        "/api/sessions", {"session_id": "ui-leak", "start": False}
    )
    assert status == 201, body
    page.add_init_script(TRACK_RESOURCES)
    try:
        dashboard(page, sandbox_gateway, "/sessions/ui-leak")
        expect(page.locator("#session-status .badge")).to_have_text("STOPPED")
        shown = page.evaluate("window.__resources()")
        # The page's reload, the QR countdown and the deliveries refresh.
        assert shown == {"intervals": 3, "sessionSockets": 1}, shown

        page.get_by_role("link", name="API keys", exact=True).click()
        expect(page.get_by_role("heading", name="API keys")).to_be_visible()
        assert page.evaluate("window.__resources()") == {"intervals": 0, "sessionSockets": 0}

        page.goto(f"{sandbox_gateway.http.base}/dashboard/#/sessions/ui-missing")
        expect(page.get_by_role("heading", name="Session not found")).to_be_visible()
        assert page.evaluate("window.__resources()") == {"intervals": 0, "sessionSockets": 0}
        assert page.js_errors == []
    finally:
        sandbox_gateway.http.call("DELETE", "/api/sessions/ui-leak")
