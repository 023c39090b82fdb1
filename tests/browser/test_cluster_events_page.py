"""The dashboard of one node in Chromium shows a session another node runs live: its state
as it changes there, and its events on its page, pushed over the node's event stream
(relayed through PostgreSQL), not waiting for the nodes' next renewal round; and the
memory its worker uses there."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.backends import ScratchDatabase
from tests.browser.support import Sandbox, shot
from tests.e2e.clusterlib import pinned
from tests.procs import wait_until

pytestmark = pytest.mark.browser

#: The nodes read what the others wrote every 40 s only: a state change seen sooner came
#: over the event stream.
ROUND = {"GOWA_LEASE_RENEW_INTERVAL": "40", "GOWA_LEASE_TTL": "120", "GOWA_SAMPLE_INTERVAL": "1"}


def test_a_node_dashboard_shows_another_node_session_live(
    page, gateway_factory, tmp_path, sandbox: Sandbox, database: ScratchDatabase
) -> None:
    a, b = (
        gateway_factory(
            env={"GOWA_DATABASE_URL": database.url, "GOWA_NODE_ID": name, **ROUND},
            data_dir=tmp_path / name / "data",
            args=["--sandbox", sandbox.url],
        )
        for name in ("a", "b")
    )
    status, body = pinned(b).http.post("/api/sessions", {"session_id": "c1"})
    assert status == 201, body
    pinned(b).wait_status("c1", {"SCAN_QR_CODE"}, timeout=45)
    wait_until(
        lambda: a.http.get("/api/sessions/c1")[1]["results"]["node"] == "b",
        90,
        what="a knows c1 runs on b",
    )

    page.goto(f"{a.http.base}/dashboard/#/sessions")
    row = page.locator('#sessions-table tr[data-session="c1"]')
    expect(row.locator('td[data-label="Node"]')).to_have_text("b")
    expect(row.locator('td[data-label="Status"] .badge')).to_have_text("SCAN_QR_CODE")

    status, body = sandbox.http.post("/sim/phones", {"phone": "15550009101", "push_name": "c"})
    assert status == 201, body
    status, body = pinned(b).http.get("/api/c1/app/login")
    assert status == 200, body
    status, body = sandbox.http.post(
        "/sim/phones/15550009101/scan", {"qr": body["results"]["qr_code"]}
    )
    assert status == 200, body
    pinned(b).wait_status("c1", {"CONNECTED"}, timeout=30)
    # Pushed: well within a renewal round (and the table's 5 s poll reads a's registry,
    # which the pushed state change has refreshed).
    expect(row.locator('td[data-label="Status"] .badge')).to_have_text("CONNECTED", timeout=15_000)
    expect(row.locator('td[data-label="Phone"]')).to_have_text("+15550009101", timeout=45_000)
    # The memory b's worker uses, from b's samples (the table polls every 5 s).
    expect(row.locator('td[data-label="RSS"]')).to_have_text(re.compile("iB$"), timeout=15_000)
    shot(page, "cluster-remote-session-1280")

    # Its page on a: the events of b's worker arrive as they happen.
    row.get_by_role("link", name="c1").click()
    expect(page.locator("#session-status .badge")).to_have_text("CONNECTED")
    status, body = sandbox.http.post("/sim/phones", {"phone": "15550009102", "push_name": "d"})
    assert status == 201, body
    status, body = sandbox.http.post(
        "/sim/phones/15550009102/send", {"to": "15550009101", "text": "seen on a"}
    )
    assert status == 200, body
    expect(page.locator("#event-list li[data-event='message']")).to_contain_text(
        "seen on a", timeout=20_000
    )
    assert page.js_errors == []
