"""The dashboard's Cluster page in Chromium: a node on PostgreSQL lists itself with its
headroom, names the node of each session and drains on confirmation; a SQLite gateway
has no Cluster page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.backends import ScratchDatabase
from tests.browser.support import Sandbox, shot

pytestmark = pytest.mark.browser


def test_cluster_page_lists_the_node_and_drains_it(
    page, gateway_factory, sandbox: Sandbox, database: ScratchDatabase
) -> None:
    gateway = gateway_factory(
        env={
            "GOWA_DATABASE_URL": database.url,
            "GOWA_NODE_ID": "node-a",
            "GOWA_SAMPLE_INTERVAL": "1",
            "GOWA_LEASE_RENEW_INTERVAL": "1",
            "GOWA_NODE_MEMORY_MB": "2048",
        },
        args=["--sandbox", sandbox.url],
    )
    status, body = gateway.http.post("/api/sessions", {"session_id": "c1"})
    assert status == 201, body
    gateway.wait_status("c1", {"SCAN_QR_CODE"}, timeout=45)

    page.goto(f"{gateway.http.base}/dashboard/#/sessions")
    table = page.locator("#sessions-table")
    expect(table.locator("thead th").nth(2)).to_have_text("Node")
    expect(table.locator('tr[data-session="c1"] td[data-label="Node"]')).to_have_text("node-a")

    page.get_by_role("link", name="Cluster").click()
    expect(page).to_have_url(re.compile(r"#/cluster$"))
    row = page.locator('#nodes-table tr[data-node="node-a"]')
    expect(row.locator("th")).to_have_text("node-a (this node)")
    expect(row.locator('td[data-label="URL"]')).to_contain_text("http://")
    expect(row.locator('td[data-label="Status"] .badge')).to_have_text("up")
    expect(row.locator('td[data-label="Sessions"]')).to_have_text("1 / 1000")
    expect(row.locator('td[data-label="Last heartbeat"]')).to_have_text(re.compile("ago|now"))
    # The workers' memory comes with the node's heartbeat after their first sample, and the
    # page polls every 5 s.
    # Its budget (node_memory_mb) beside it.
    expect(row.locator('td[data-label="Memory (PSS)"]')).to_have_text(
        re.compile(r"^[\d.]+ [KM]iB / 2\.0 GiB$"), timeout=15_000
    )
    # Headroom: what the budget holds at the memory per worker, less the session: far
    # fewer than max_sessions' 1000, so memory limits it.
    status, body = gateway.http.get("/api/cluster/nodes")
    node = body["results"][0]
    assert node["headroom"] == node["memory_capacity"] - 1 < 999, node
    headroom = row.locator('td[data-label="Headroom"]')
    expect(headroom).to_have_text(re.compile(r"^\d+ \(memory\)$"))
    expect(headroom.locator("[data-limit]")).to_have_attribute(
        "title", re.compile(r"^budget 2\.0 GiB holds \d+ sessions \([\d.]+ MiB per worker")
    )
    shot(page, "cluster-page-1280")

    # Cancelling the confirmation drains nothing; confirming does.
    row.get_by_role("button", name="Drain").click()
    page.get_by_role("dialog", name="Drain node node-a?").get_by_role(
        "button", name="Cancel"
    ).click()
    status, body = gateway.http.get("/api/cluster/nodes")
    assert status == 200, body
    assert body["results"][0]["status"] == "up"
    row.get_by_role("button", name="Drain").click()
    page.get_by_role("dialog", name="Drain node node-a?").get_by_role(
        "button", name="Drain"
    ).click()
    expect(row.locator('td[data-label="Status"] .badge')).to_have_text("draining")
    expect(row.get_by_role("button", name="Drain")).to_have_count(0)
    status, body = gateway.http.get("/api/cluster/nodes")
    assert body["results"][0]["status"] == "draining", body
    assert page.js_errors == []


def test_sqlite_gateway_has_no_cluster_page(page, gateway_factory, sandbox: Sandbox) -> None:
    gateway = gateway_factory(args=["--sandbox", sandbox.url])
    status, body = gateway.http.get("/api/cluster/nodes")
    assert status == 409 and body["code"] == "NOT_A_CLUSTER", body
    status, body = gateway.http.post("/api/sessions", {"session_id": "s1"})
    assert status == 201, body

    page.goto(f"{gateway.http.base}/dashboard/#/sessions")
    table = page.locator("#sessions-table")
    expect(table.locator('tr[data-session="s1"]')).to_be_visible()
    expect(table.locator("thead th").nth(1)).to_have_text("Status")
    assert "Node" not in table.locator("thead th").all_text_contents()
    expect(page.get_by_role("link", name="Sessions")).to_be_visible()
    expect(page.locator("#nav-cluster")).to_be_hidden()
    # The page's address alone does not bring it back: the landing page answers instead.
    page.goto(f"{gateway.http.base}/dashboard/#/cluster")
    expect(page.locator("#stat-sessions")).to_be_visible()
    expect(page.locator("#nodes-table")).to_have_count(0)
    assert page.js_errors == []
