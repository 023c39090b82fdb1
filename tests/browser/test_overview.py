"""The landing page in Chromium against a real gateway: the charts' axes."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

MIB = 1024 * 1024

# Draws one memory chart, with the dashboard's own module, into a fresh 600 px box and
# answers the y-axis labels it drew.
DRAW_MEMORY = """async (pss) => {
    const { memoryChart } = await import("/dashboard/app/charts.js");
    const box = document.createElement("div");
    box.style.width = "600px";
    document.body.append(box);
    const now = Math.floor(Date.now() / 1000);
    const timestamps = Object.values(pss)[0].map((_, i) => now - 60 + 10 * i);
    const chart = memoryChart(box);
    chart.update({ timestamps, pss });
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 50)));
    const ticks = box.dataset.yTicks;
    chart.destroy();
    box.remove();
    return JSON.parse(ticks);
}"""


def ticks(page, chart: str) -> list[str]:
    """The y-axis labels the chart drew (uPlot draws them on a canvas)."""
    locator = page.locator(chart)
    expect(locator).to_have_attribute("data-y-ticks", re.compile(r"^\[.+\]$"))
    return json.loads(locator.get_attribute("data-y-ticks") or "[]")


def assert_unique(labels: list[str]) -> None:
    assert len(labels) >= 2, labels
    assert len(set(labels)) == len(labels), f"repeated tick labels: {labels}"
    values = [float(label) for label in labels]
    assert values == sorted(values), labels


def test_chart_axes_never_repeat_a_tick_label(page, gateway_factory) -> None:
    gateway = gateway_factory()
    page.goto(f"{gateway.http.base}/dashboard/#/")
    expect(page.locator("#stat-sessions")).to_have_text("0")
    # Empty charts: no session, no sample, no message.
    for chart in ("#chart-memory", "#chart-messages", "#chart-connected"):
        labels = ticks(page, chart)
        assert_unique(labels)
        assert "" not in labels, (chart, labels)
    assert ticks(page, "#chart-memory")[0] == "0.0"

    # Small values (under 1 MiB), a few MiB, and hundreds of MiB.
    for pss in (
        {"a": [0.05 * MIB, 0.3 * MIB, None, 0.2 * MIB]},
        {"a": [1.2 * MIB, 3.4 * MIB, 2.0 * MIB], "b": [0.4 * MIB, None, 0.9 * MIB]},
        {"a": [180 * MIB, 240 * MIB, 210 * MIB]},
    ):
        assert_unique(page.evaluate(DRAW_MEMORY, pss))
    assert page.js_errors == []
