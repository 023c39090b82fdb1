"""The landing page in Chromium against a real gateway: the sessions table first, then the
totals and the charts, whose axes never repeat a tick label."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import shot
from tests.procs import Gateway

pytestmark = pytest.mark.browser

MIB = 1024 * 1024

# Draws one memory chart, with the dashboard's own module, into a fresh 600 px box over the
# last `minutes`, samples spread evenly in it, and answers the labels its axes drew.
DRAW_MEMORY = """async ([pss, minutes]) => {
    const { memoryChart } = await import("/dashboard/app/charts.js");
    const box = document.createElement("div");
    box.style.width = "600px";
    document.body.append(box);
    const until = Date.now() / 1000;
    const since = until - minutes * 60;
    const count = Object.values(pss)[0].length;
    const gap = (until - since) / (count + 1);
    const timestamps = Object.values(pss)[0].map((_, i) => since + (i + 1) * gap);
    const chart = memoryChart(box);
    chart.update({ timestamps, pss }, [since, until]);
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 50)));
    const ticks = { x: JSON.parse(box.dataset.xTicks), y: JSON.parse(box.dataset.yTicks) };
    chart.destroy();
    box.remove();
    return ticks;
}"""


def ticks(page, chart: str, axis: str) -> list[str]:
    """The labels an axis of the chart drew (uPlot draws them on a canvas)."""
    locator = page.locator(chart)
    expect(locator).to_have_attribute(f"data-{axis}-ticks", re.compile(r"^\[.+\]$"))
    return json.loads(locator.get_attribute(f"data-{axis}-ticks") or "[]")


def assert_unique(labels: list[str], numbers: bool = True) -> None:
    assert len(labels) >= 2, labels
    assert len(set(labels)) == len(labels), f"repeated tick labels: {labels}"
    assert "" not in labels, labels
    if numbers:
        values = [float(label) for label in labels]
        assert values == sorted(values), labels


def test_chart_axes_never_repeat_a_tick_label(page, gateway_factory) -> None:
    gateway = gateway_factory()
    page.goto(f"{gateway.http.base}/dashboard/#/")
    expect(page.locator("#stat-sessions")).to_have_text("0")
    # Empty charts: no session, no sample, no message.
    for chart in ("#chart-memory", "#chart-messages", "#chart-connected"):
        assert_unique(ticks(page, chart, "y"))
        assert_unique(ticks(page, chart, "x"), numbers=False)
    assert ticks(page, "#chart-memory", "y")[0] == "0.0"

    # Small values (under 1 MiB), a few MiB, hundreds of MiB; one sample alone (uPlot spread
    # it over days, all labelled 12:00 AM); a minute (seconds apart) and a day (across midnight).
    for pss, minutes in (
        ({"a": [0.05 * MIB, 0.3 * MIB, None, 0.2 * MIB]}, 60),
        ({"a": [1.2 * MIB, 3.4 * MIB, 2.0 * MIB], "b": [0.4 * MIB, None, 0.9 * MIB]}, 15),
        ({"a": [180 * MIB, 240 * MIB, 210 * MIB]}, 360),
        ({"a": [30 * MIB]}, 60),
        ({"a": [30 * MIB, 31 * MIB]}, 1),
        ({"a": [30 * MIB, 31 * MIB, 29 * MIB]}, 1440),
    ):
        drawn = page.evaluate(DRAW_MEMORY, [pss, minutes])
        assert_unique(drawn["y"])
        assert_unique(drawn["x"], numbers=False)
    assert page.js_errors == []


def test_landing_page_shows_the_sessions_table_first(page, sandbox_gateway: Gateway) -> None:
    http = sandbox_gateway.http
    assert http.post("/api/sessions", {"session_id": "land-run"})[0] == 201
    assert http.post("/api/sessions", {"session_id": "land-stop", "start": False})[0] == 201
    try:
        page.goto(f"{http.base}/dashboard/#/")
        table = page.locator("#overview-sessions")
        expect(table.locator("thead th")).to_have_text(
            ["Session", "Status", "Phone", "Memory (PSS)", "Last activity", "Actions"]
        )
        above = page.evaluate(
            """() => document.querySelector("#overview-sessions").getBoundingClientRect().bottom
                <= document.querySelector("#stat-sessions").getBoundingClientRect().top"""
        )
        assert above, "the sessions table is not above the totals"

        running = table.locator("tr[data-session='land-run']")
        stopped = table.locator("tr[data-session='land-stop']")
        expect(running.locator(".badge")).to_have_text(re.compile("STARTING|SCAN_QR_CODE"))
        expect(running.locator("td[data-label='Memory (PSS)']")).to_have_text(
            re.compile("MiB"), timeout=15000
        )
        expect(stopped.locator(".badge")).to_have_text("STOPPED")
        expect(stopped.locator("td[data-label='Memory (PSS)']")).to_have_text("–")
        expect(stopped.locator("td[data-label='Last activity']")).to_have_text(
            re.compile("never|ago|just now")
        )
        shot(page, "landing-1280")

        # The actions work from the landing page; the status follows live.
        stopped.get_by_role("button", name="Start session land-stop", exact=True).click()
        expect(stopped.locator(".badge")).to_have_text(
            re.compile("STARTING|SCAN_QR_CODE"), timeout=20000
        )
        running.get_by_role("button", name="Stop session land-run", exact=True).click()
        expect(running.locator(".badge")).to_have_text("STOPPED", timeout=20000)
        assert sandbox_gateway.session("land-run")["status"] == "STOPPED"

        running.get_by_role("link", name="land-run").click()
        expect(page).to_have_url(re.compile(r"#/sessions/land-run$"))
        assert page.js_errors == []
    finally:
        for session_id in ("land-run", "land-stop"):
            http.call("DELETE", f"/api/sessions/{session_id}")
