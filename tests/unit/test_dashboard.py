"""Dashboard routes: static files, cookie login with CSRF, counters, metrics, export.

No worker is started: sessions are created stopped and events are fed to the counters
directly, built as the supervisor hands them over (the sessions have no account yet).
"""

import time
import uuid

import aiohttp
import pytest

from gowa_py import protocol as p
from gowa_py.eventbody import EventBody
from gowa_py.gateway.dashboard.reads import memory_series
from gowa_py.gateway.dashboard.sandboxscan import sandbox_phone
from gowa_py.gateway.keys import DASHBOARD_STATS, REGISTRY, SUPERVISOR
from gowa_py.gateway.websessions import COOKIE_NAME
from gowa_py.models import SessionConfig

KEY = "k3y-for-tests"


def event(session_id, name, payload, ts=None):
    event = p.Event(
        id=uuid.uuid4().hex,
        session_id=session_id,
        name=name,
        timestamp=ts or time.time(),
        payload=payload,
    )
    return EventBody(event, None)


async def _body(response):
    body = await response.json()
    assert set(body) == {"code", "message", "results"}, body
    return response.status, body


async def test_static_files_are_public_and_limited(make_client):
    client = await make_client({"GOWA_API_KEY": KEY})
    for path in ("/dashboard", "/dashboard/"):
        response = await client.get(path)
        assert response.status == 200
        assert response.content_type == "text/html"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    for path in ("/dashboard/app/main.js", "/dashboard/app/panels/events.js"):
        response = await client.get(path)
        assert (response.status, response.content_type) == (200, "text/javascript"), path
    response = await client.get("/dashboard/vendor/uPlot.esm.js")
    assert response.status == 200, "run `make dashboard-deps` (npm ci in dashboard/)"
    assert "uPlot" in await response.text()
    for path in (
        "/dashboard/vendor/package.json",
        "/dashboard/app/..%2Findex.html",
        "/dashboard/app/Main.JS",
        "/dashboard/app/missing.js",
        "/dashboard/app/panels/missing.js",
        "/dashboard/app/vendor/main.js",
        "/dashboard/app/panels/..%2F..%2Findex.html",
        "/dashboard/app/%2E%2E/main.js",
    ):
        status, body = await _body(await client.get(path))
        assert (status, body["code"]) == (404, "NOT_FOUND"), path


async def test_cookie_login_csrf_and_logout(make_client):
    client = await make_client({"GOWA_API_KEY": KEY})
    status, body = await _body(await client.get("/api/dashboard/auth"))
    assert body["results"]["auth_required"] is True
    assert body["results"]["authenticated"] is False
    assert body["results"]["methods"] == ["api_key"]
    status, body = await _body(await client.get("/api/sessions"))
    assert (status, body["code"]) == (401, "UNAUTHORIZED")

    status, body = await _body(await client.post("/api/dashboard/login", json={"api_key": "no"}))
    assert (status, body["code"]) == (401, "UNAUTHORIZED")
    response = await client.post("/api/dashboard/login", json={"api_key": KEY})
    status, body = await _body(response)
    assert status == 200
    csrf = body["results"]["csrf_token"]
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and not cookie["secure"]
    assert KEY not in response.headers["Set-Cookie"]

    assert (await client.get("/api/sessions")).status == 200
    status, body = await _body(await client.get("/api/dashboard/auth"))
    assert body["results"]["authenticated"] and body["results"]["csrf_token"] == csrf

    new = {"session_id": "c1", "start": False}
    status, body = await _body(await client.post("/api/sessions", json=new))
    assert (status, body["code"]) == (403, "CSRF_FAILED")
    bad = {"X-CSRF-Token": "wrong"}
    status, body = await _body(await client.post("/api/sessions", json=new, headers=bad))
    assert (status, body["code"]) == (403, "CSRF_FAILED")
    evil = {"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
    status, body = await _body(await client.post("/api/sessions", json=new, headers=evil))
    assert status == 403
    ok = {"X-CSRF-Token": csrf}
    assert (await client.post("/api/sessions", json=new, headers=ok)).status == 201

    async with client.ws_connect("/api/dashboard/events") as ws:
        assert not ws.closed
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/dashboard/events", headers={"Origin": "http://evil.test"})
    assert refused.value.status == 403

    assert (await client.post("/api/dashboard/logout", headers=ok)).status == 200
    assert (await client.get("/api/sessions")).status == 401


async def test_header_credentials_need_no_csrf(make_client):
    client = await make_client({"GOWA_API_KEY": KEY})
    response = await client.post(
        "/api/sessions", json={"session_id": "h1", "start": False}, headers={"X-Api-Key": KEY}
    )
    assert response.status == 201


async def test_basic_auth_login_and_no_browser_prompt(make_client):
    client = await make_client({"GOWA_BASIC_AUTH": "ops:s3cret"})
    response = await client.get("/api/sessions")
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    response = await client.get("/api/sessions", headers={"X-Gowa-Dashboard": "1"})
    assert response.status == 401 and "WWW-Authenticate" not in response.headers
    body = {"username": "ops", "password": "wrong"}
    assert (await client.post("/api/dashboard/login", json=body)).status == 401
    body["password"] = "s3cret"
    assert (await client.post("/api/dashboard/login", json=body)).status == 200
    assert (await client.get("/api/dashboard/stats")).status == 200


async def test_login_failures_are_throttled(make_client):
    client = await make_client({"GOWA_API_KEY": KEY})
    for _ in range(10):
        assert (await client.post("/api/dashboard/login", json={"api_key": "x"})).status == 401
    status, body = await _body(await client.post("/api/dashboard/login", json={"api_key": KEY}))
    assert (status, body["code"]) == (429, "TOO_MANY_REQUESTS")


async def test_login_without_credentials_configured(make_client):
    client = await make_client()
    status, body = await _body(await client.get("/api/dashboard/auth"))
    assert body["results"]["auth_required"] is False and body["results"]["authenticated"]
    status, body = await _body(await client.post("/api/dashboard/login", json={}))
    assert status == 200 and COOKIE_NAME not in (await client.get("/")).cookies


async def test_counters_stats_and_metrics_survive_restart(make_client, tmp_path):
    data = tmp_path / "persist"
    client = await make_client(data_dir=data)
    app = client.server.app
    await app[SUPERVISOR].create("m1", SessionConfig(), start=False)
    stats = app[DASHBOARD_STATS]
    await stats.on_event(event("m1", "message", {"is_from_me": False, "from": "1@s"}))
    await stats.on_event(event("m1", "message", {"is_from_me": False, "from": "2@s"}))
    await stats.on_event(event("m1", "message", {"is_from_me": True}))
    await stats.on_event(event("m1", "message.sent", {"message_id": "x"}))
    await stats.on_event(event("m1", "log", {"level": "INFO", "message": "hi"}))

    status, body = await _body(await client.get("/api/dashboard/stats?tz_offset=0"))
    results = body["results"]
    assert results["sessions"] == 1 and results["connected"] == 0
    assert results["messages_today"]["received"] == 2
    assert results["messages_today"]["sent"] == 1
    assert results["by_status"]["STOPPED"] == 1

    now = time.time()
    app[REGISTRY].add_samples(
        [
            {"ts": now - 20, "session_id": "m1", "rss": 10, "pss": 8, "uss": 6, "cpu": 1.0},
            {"ts": now - 10, "session_id": "m1", "rss": 12, "pss": 9, "uss": 7, "cpu": 1.0},
        ]
    )
    status, body = await _body(await client.get("/api/dashboard/metrics?minutes=5"))
    metrics = body["results"]
    assert metrics["memory"]["pss"]["m1"][-2:] == [8, 9]
    assert len(metrics["memory"]["timestamps"]) == 2
    # The window the charts' time axes span, on the gateway's clock.
    assert metrics["until"] - metrics["since"] == pytest.approx(300)
    assert metrics["since"] <= metrics["memory"]["timestamps"][0] < metrics["until"]
    hours = metrics["messages_per_hour"]
    assert len(hours) >= 24 and sum(h["received"] for h in hours) == 2
    assert metrics["connected"][-1] == {**metrics["connected"][-1], "connected": 0, "sessions": 1}

    status, body = await _body(await client.get("/api/dashboard/metrics?minutes=0"))
    assert (status, body["code"]) == (400, "VALIDATION_ERROR")

    status, body = await _body(await client.get("/api/dashboard/sessions/m1/events?limit=2"))
    assert [e["event"] for e in body["results"]] == ["message.sent", "log"]

    await client.close()
    again = await make_client(data_dir=data)
    status, body = await _body(await again.get("/api/dashboard/stats"))
    today = body["results"]["messages_today"]
    assert (today["received"], today["sent"]) == (2, 1)


async def test_dashboard_sessions_export_and_sandbox_disabled(make_client):
    client = await make_client()
    app = client.server.app
    response = await client.post("/api/sessions", json={"session_id": "e1", "start": False})
    assert response.status == 201
    await app[DASHBOARD_STATS].on_event(
        event("e1", "session.qr", {"qr_code": "2@abc", "qr_duration": 60})
    )

    status, body = await _body(await client.get("/api/dashboard/sessions"))
    (item,) = body["results"]
    assert item["id"] == "e1" and item["status"] == "STOPPED"
    assert item["uptime_s"] is None and item["phone"] is None
    assert item["worker"]["memory"] == {"rss": 0, "pss": 0, "uss": 0}

    response = await client.get("/api/dashboard/sessions/e1/export")
    status, body = await _body(response)
    assert status == 200
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="gowa-session-e1-'
    )
    export = body["results"]
    assert export["session"]["id"] == "e1"
    assert [t["status"] for t in export["transitions"]] == ["STOPPED"] * len(export["transitions"])
    assert [e["event"] for e in export["events"]] == ["session.status", "session.qr"]

    status, body = await _body(await client.get("/api/dashboard/sessions/nope/export"))
    assert (status, body["code"]) == (404, "SESSION_NOT_FOUND")
    status, body = await _body(await client.post("/api/dashboard/sessions/e1/sandbox-scan"))
    assert (status, body["code"]) == (409, "SANDBOX_DISABLED")


def test_memory_series_buckets_and_gaps():
    samples = [
        {"ts": 100.0, "session_id": "a", "pss": 10},
        {"ts": 102.0, "session_id": "a", "pss": 20},
        {"ts": 106.0, "session_id": "b", "pss": 5},
    ]
    series = memory_series(samples, since=100.0, step=5.0)
    assert series["timestamps"] == [100.0, 105.0]
    assert series["pss"] == {"a": [15, None], "b": [None, 5]}


def test_sandbox_phone_is_stable_digits():
    assert sandbox_phone("sales") == sandbox_phone("sales")
    assert sandbox_phone("sales") != sandbox_phone("support")
    assert sandbox_phone("x").isdigit() and len(sandbox_phone("x")) == 12
