"""The HTTP contract for bad input, auth and unknown routes (no worker is started here)."""

import base64
import re

import pytest


@pytest.fixture
def make_client(make_client):
    """Clients of a gateway with a tiny body limit, to test 413 cheaply."""
    return lambda env=None: make_client(env, max_body_mb=0.01)


async def _json(response):
    body = await response.json()
    assert set(body) == {"code", "message", "results"}
    return response.status, body


@pytest.mark.parametrize("bad", ["-x", "a.b", "x" * 65, "a%2Fb", "%C3%A9", "a%0A"])
async def test_invalid_session_ids_are_400_before_disk(make_client, tmp_path, bad):
    client = await make_client()
    for method, path in [
        ("GET", f"/api/sessions/{bad}"),
        ("POST", f"/api/sessions/{bad}/start"),
        ("DELETE", f"/api/sessions/{bad}"),
        ("GET", f"/api/{bad}/app/status"),
        ("GET", f"/devices/{bad}"),
    ]:
        status, body = await _json(await client.request(method, path))
        assert (status, body["code"]) == (400, "INVALID_SESSION_ID"), (method, path, body)
    assert sorted(p.name for p in (tmp_path / "data" / "sessions").iterdir()) == []


async def test_invalid_device_header_is_400(make_client):
    client = await make_client()
    status, body = await _json(await client.get("/app/status", headers={"X-Device-Id": "../x"}))
    assert (status, body["code"]) == (400, "INVALID_SESSION_ID")


async def test_create_get_conflict_and_missing(make_client):
    client = await make_client()
    response = await client.post("/api/sessions", json={"session_id": "a", "start": False})
    status, body = await _json(response)
    assert status == 201
    session = body["results"]
    assert session["id"] == "a" and session["status"] == "STOPPED"
    assert set(session) >= {"id", "status", "created_at", "last_activity", "me", "worker", "config"}
    assert set(session["worker"]) == {"pid", "started_at", "restarts", "memory", "cpu_percent"}
    status, body = await _json(await client.post("/api/sessions", json={"session_id": "a"}))
    assert (status, body["code"]) == (409, "SESSION_EXISTS")
    status, body = await _json(await client.get("/api/sessions/zzz"))
    assert (status, body["code"]) == (404, "SESSION_NOT_FOUND")
    status, body = await _json(await client.get("/api/zzz/app/status"))
    assert (status, body["code"]) == (404, "SESSION_NOT_FOUND")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"session_id": 5}, "$.session_id"),
        ({"session_id": "a", "start": "yes"}, "$.start"),
        ({"session_id": "a", "config": {"proxy": 3}}, "$.config.proxy"),
        (
            {"session_id": "a", "config": {"webhooks": [{"url": "ftp://x"}]}},
            "$.config.webhooks[0].url",
        ),
        ({"session_id": "a", "config": {"nope": 1}}, "nope"),
        ({}, "session_id"),
    ],
)
async def test_wrong_fields_are_named(make_client, body, field):
    client = await make_client()
    status, answer = await _json(await client.post("/api/sessions", json=body))
    assert (status, answer["code"]) == (400, "VALIDATION_ERROR")
    assert field in answer["message"]


async def test_malformed_json_and_patch_validation(make_client):
    client = await make_client()
    as_json = {"Content-Type": "application/json"}
    status, body = await _json(await client.post("/api/sessions", data=b"{nope", headers=as_json))
    assert (status, body["code"]) == (400, "VALIDATION_ERROR")
    await client.post("/api/sessions", json={"session_id": "a", "start": False})
    status, body = await _json(
        await client.patch("/api/sessions/a", json={"config": {"idle_timeout": "soon"}})
    )
    assert status == 400 and "$.config.idle_timeout" in body["message"]
    status, body = await _json(
        await client.patch("/api/sessions/a", json={"config": {"proxy": "socks5://9.9.9.9:1080"}})
    )
    assert status == 200 and body["results"]["config"]["proxy"] == "socks5://9.9.9.9:1080"


async def test_oversize_body_is_413(make_client):
    client = await make_client()
    status, body = await _json(
        await client.post(
            "/api/sessions", data=b"x" * 20_000, headers={"Content-Type": "application/json"}
        )
    )
    assert (status, body["code"]) == (413, "PAYLOAD_TOO_LARGE")


async def test_unknown_route_and_method_are_json(make_client):
    client = await make_client()
    status, body = await _json(await client.get("/nope/nope/nope"))
    assert (status, body["code"]) == (404, "NOT_FOUND")
    status, body = await _json(await client.put("/api/sessions"))
    assert (status, body["code"]) == (405, "METHOD_NOT_ALLOWED")


async def test_send_to_stopped_session_is_503(make_client):
    client = await make_client()
    await client.post("/api/sessions", json={"session_id": "a", "start": False})
    status, body = await _json(
        await client.post("/api/a/send/message", json={"phone": "15550001", "message": "hi"})
    )
    assert (status, body["code"]) == (503, "SESSION_UNAVAILABLE")
    status, body = await _json(await client.post("/api/a/send/message", json={"phone": 1}))
    assert (status, body["code"]) == (400, "VALIDATION_ERROR")


async def test_api_key_is_required_except_health(make_client):
    client = await make_client({"GOWA_API_KEY": "s3cret"})
    assert (await client.get("/healthz")).status == 200
    status, body = await _json(await client.get("/api/sessions"))
    assert (status, body["code"]) == (401, "UNAUTHORIZED")
    assert (await client.get("/api/sessions", headers={"X-Api-Key": "wrong"})).status == 401
    assert (await client.get("/api/sessions", headers={"X-Api-Key": "s3cret"})).status == 200
    assert (await client.get("/metrics")).status == 401


async def test_basic_auth_accepts_any_configured_pair(make_client):
    client = await make_client({"GOWA_BASIC_AUTH": "alice:pw1,bob:pw2"})

    def auth(pair):
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}

    assert (await client.get("/api/sessions", headers=auth("bob:pw2"))).status == 200
    response = await client.get("/api/sessions", headers=auth("bob:pw1"))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert (await client.get("/api/sessions", headers={"Authorization": "Basic !!"})).status == 401


async def test_metrics_and_probes(make_client):
    client = await make_client()
    await client.post("/api/sessions", json={"session_id": "a", "start": False})
    text = await (await client.get("/metrics")).text()
    assert 'gowa_sessions{state="STOPPED"} 1.0' in text
    assert "gowa_http_request_duration_seconds_bucket" in text
    assert re.search(
        r'^gowa_ksm_state\{state="(started|running|stopped|unavailable)"\} 1.0$', text, re.M
    )
    assert (await client.get("/readyz")).status == 200
    assert await (await client.get("/health")).text() == "OK"


async def test_devices_routes_share_sessions(make_client):
    client = await make_client()
    status, body = await _json(
        await client.post(
            "/devices",
            json={
                "device_id": "dev1",
                "webhook_url": "https://example.com/h",
                "webhook_events": "message",
            },
        )
    )
    assert status == 200 and body["results"]["id"] == "dev1"
    status, body = await _json(await client.get("/api/sessions/dev1"))
    assert body["results"]["config"]["webhooks"][0]["events"] == ["message"]
    status, body = await _json(await client.get("/devices"))
    assert [d["id"] for d in body["results"]] == ["dev1"]
    assert body["results"][0]["state"] == "disconnected"
    status, body = await _json(await client.get("/devices/dev1/webhook"))
    assert body["results"]["webhook_url"] == "https://example.com/h"
    status, body = await _json(await client.get("/app/devices"))
    assert body["results"] == [{"name": "", "device": "dev1", "jid": ""}]
    status, body = await _json(await client.delete("/devices/dev1"))
    assert status == 200
    status, body = await _json(await client.get("/devices/dev1"))
    assert (status, body["code"]) == (404, "SESSION_NOT_FOUND")
