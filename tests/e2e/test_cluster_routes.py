"""Two gateway nodes on one PostgreSQL, as behind a load balancer: a dashboard sign-in made
on one node holds on the other, and ends on both at a sign-out or at its expiry; GoWA's
``POST /devices`` and implicit ``default`` session start on the node with the most room,
like ``POST /api/sessions``; a node whose memory budget is spent gets no new session and
takes none over."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psycopg
import pytest

from gowa_py.cluster.headroom import DEFAULT_WORKER_BYTES
from gowa_py.gateway.websessions import COOKIE_NAME
from tests.e2e.clusterlib import local
from tests.procs import Gateway, find_workers, wait_until

pytestmark = pytest.mark.integration

KEY = "cluster-admin-key"
#: The load balancer's name, where the dashboard's pages come from (every node allows it).
BALANCER = "gowa.test"


def _node(
    gateway_factory, tmp_path: Path, database, name: str, args: list[str] | None = None, **env: str
) -> Gateway:
    return gateway_factory(
        env={
            "GOWA_DATABASE_URL": database.url,
            "GOWA_NODE_ID": name,
            "GOWA_API_KEY": KEY,
            "GOWA_LEASE_RENEW_INTERVAL": "1",
            "GOWA_ALLOWED_HOSTS": BALANCER,
            **env,
        },
        data_dir=tmp_path / name / "data",
        args=args,
    )


def _browser(gateway: Gateway, token: str, csrf: str | None = None) -> httpx.Client:
    """A browser with the dashboard's cookie (and, for writes, its CSRF token and Origin)."""
    headers = {"Cookie": f"{COOKIE_NAME}={token}", "Origin": f"http://{BALANCER}"}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    return httpx.Client(base_url=gateway.http.base, headers=headers, timeout=30)


def _signed_in(gateway: Gateway, token: str) -> bool:
    with _browser(gateway, token) as browser:
        state = browser.get("/api/dashboard/auth").json()["results"]
        listed = browser.get("/api/sessions").status_code
    assert (listed == 200) == state["authenticated"], (listed, state)
    return bool(state["authenticated"])


def _nodes(via: Gateway) -> dict[str, dict]:
    """The cluster's nodes as ``via`` lists them, by id."""
    return {n["id"]: n for n in via.http.get("/api/cluster/nodes")[1]["results"]}


def _placement_knows(via: Gateway, field: str, expected: dict[str, int]) -> None:
    """Wait until ``via`` lists each node's ``field`` as ``expected``, then two renewal
    rounds, so that its placement has the values too."""
    wait_until(
        lambda: {i: n[field] for i, n in _nodes(via).items()} == expected,
        10,
        what=f"the nodes' {field} {expected}",
    )
    time.sleep(2)


def _sign_in(gateway: Gateway) -> tuple[str, str]:
    response = httpx.post(gateway.http.base + "/api/dashboard/login", json={"api_key": KEY})
    assert response.status_code == 200, response.text
    return response.cookies[COOKIE_NAME], response.json()["results"]["csrf_token"]


def test_a_dashboard_sign_in_holds_on_every_node_until_signed_out_or_expired(
    gateway_factory, database, tmp_path
):
    # a has the more room: b sends new sessions there.
    a = _node(gateway_factory, tmp_path, database, "a", GOWA_MAX_SESSIONS="5")
    b = _node(gateway_factory, tmp_path, database, "b", GOWA_MAX_SESSIONS="1")
    token, csrf = _sign_in(a)

    # Signed in on a, the browser is signed in on b, with the same CSRF token, and may
    # write there with it.
    assert _signed_in(b, token)
    with _browser(b, token) as browser:
        state = browser.get("/api/dashboard/auth").json()["results"]
    assert state["csrf_token"] == csrf and state["expires_at"]
    with _browser(b, token, csrf) as browser:
        made = browser.post("/api/sessions", json={"session_id": "s1", "start": False})
        assert made.status_code == 201, made.text
    # A write b forwards to a carries the cookie, which a checks again: it holds there.
    _placement_knows(b, "capacity", {"a": 5, "b": 1})
    with _browser(b, token, csrf) as browser:
        made = browser.post("/api/sessions", json={"session_id": "s2", "start": False})
        assert made.status_code == 201, made.text
    with _browser(b, token, "wrong") as browser:
        refused = browser.post("/api/sessions", json={"session_id": "s3", "start": False})
        assert (refused.status_code, refused.json()["code"]) == (403, "CSRF_FAILED")
    assert not _signed_in(b, "a-token-nobody-issued")

    # The database keeps the token's digest, never the token.
    with psycopg.connect(database.url) as conn:
        rows = conn.execute("SELECT * FROM gowa.web_sessions").fetchall()
    assert len(rows) == 1 and token not in repr(rows)

    # Signed out on b: signed out on a too.
    with _browser(b, token, csrf) as browser:
        assert browser.post("/api/dashboard/logout").status_code == 200
    assert not _signed_in(a, token) and not _signed_in(b, token)

    # Expired (on the database's clock, which every node shares): refused everywhere.
    token, _ = _sign_in(b)
    assert _signed_in(a, token)
    with psycopg.connect(database.url) as conn:
        conn.execute("UPDATE gowa.web_sessions SET expires_at = now()")
    assert not _signed_in(a, token) and not _signed_in(b, token)


def test_gowa_devices_and_the_implicit_default_start_on_the_node_with_most_room(
    gateway_factory, sandbox, database, tmp_path
):
    sim = ["--sandbox", sandbox.url]
    # a takes two sessions, b five: with none, b has the more room (the same share free,
    # more headroom); with one, b has four fifths of its room left to a's whole.
    a = _node(gateway_factory, tmp_path, database, "a", sim, GOWA_MAX_SESSIONS="2")
    b = _node(gateway_factory, tmp_path, database, "b", sim, GOWA_MAX_SESSIONS="5")
    _placement_knows(a, "capacity", {"a": 2, "b": 5})

    # Made through a (GoWA's device flow), started by its login through a: it runs on b.
    status, body = a.http.post("/devices", {"device_id": "dev1"})
    assert status == 200, body
    status, body = a.http.get("/devices/dev1/login")
    assert status == 200 and body["results"]["qr_code"], body
    assert a.session("dev1")["node"] == "b"
    assert b.wait_pid("dev1") and a.http.get("/api/sessions/dev1")[1]["results"]["node"] == "b"
    # A GoWA client naming its device in X-Device-Id, on the unprefixed routes, through a
    # that knows dev1 runs on b: b's answer (a would refuse to start it, SESSION_ELSEWHERE).
    wait_until(lambda: local(a, "dev1")["node"] == "b", 10, what="a knowing dev1's node")
    status, body = a.http.get("/app/login", headers={"X-Device-Id": "dev1"})
    assert status == 200 and body["results"]["qr_link"], body

    # A GoWA client that names no device, through b: ``default`` is made and runs on a.
    status, body = b.http.get("/app/login")
    assert status == 200 and body["results"]["qr_link"], body
    wait_until(lambda: b.session("default")["node"] == "a", 10, what="default on a")
    assert a.wait_pid("default")


def test_new_and_orphaned_sessions_go_only_where_memory_has_room(
    gateway_factory, sandbox, database, tmp_path
):
    """a's memory budget holds no worker (a budget below the estimate of one), b's holds
    many: every new session goes to b, whichever node is asked, and once b has left, a
    takes none of b's sessions over; b, back, takes them all."""
    sim = ["--sandbox", sandbox.url]
    fast = {"GOWA_SAMPLE_INTERVAL": "1", "GOWA_PSS_SAMPLE_INTERVAL": "1"}
    a = _node(gateway_factory, tmp_path, database, "a", sim, GOWA_NODE_MEMORY_MB="1", **fast)
    b = _node(gateway_factory, tmp_path, database, "b", sim, GOWA_NODE_MEMORY_MB="4096", **fast)
    _placement_knows(a, "memory_budget", {"a": 1024 * 1024, "b": 4096 * 1024 * 1024})
    seen = _nodes(b)
    assert (seen["a"]["memory_capacity"], seen["a"]["headroom"]) == (0, 0)
    assert seen["a"]["capacity"] == 1000  # max_sessions would let it take many
    # b counts a worker at the default estimate until it has measured one.
    assert seen["b"]["memory_capacity"] == 4096 * 1024 * 1024 // DEFAULT_WORKER_BYTES

    for session_id, via in (("m1", a), ("m2", a), ("m3", b)):
        status, body = via.http.post("/api/sessions", {"session_id": session_id})
        assert status == 201, body
        assert b.wait_pid(session_id) and a.session(session_id)["node"] == "b"
    # b's workers measured: its capacity by memory is its budget at their mean PSS.
    wait_until(lambda: _nodes(a)["b"]["worker_memory"] > 0, 15, what="b's workers measured")
    seen = _nodes(a)["b"]
    assert seen["memory_capacity"] == 4096 * 1024 * 1024 // seen["worker_memory"]
    assert seen["headroom"] == seen["memory_capacity"] - 3 and seen["sessions"] == 3

    # b leaves (its leases end at once): a sweeps every second, and takes none of them.
    assert b.stop() == 0
    time.sleep(4)
    assert _nodes(a)["a"]["sessions"] == 0
    assert {a.session(s)["node"] for s in ("m1", "m2", "m3")} == {None}
    assert find_workers(a.data_dir) == []

    b.start()
    for session_id in ("m1", "m2", "m3"):
        assert b.wait_pid(session_id)
    wait_until(lambda: {a.session(s)["node"] for s in ("m1", "m2", "m3")} == {"b"}, 10, what="on b")
