"""Scoped API keys against a real ``gowa serve``: created by the admin, bound to sessions
and a scope, allowed exactly their sessions' routes, their event stream filtered, revoked
for good, and kept across a gateway restart."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import EventWatcher
from tests.procs import Http, wait_until

pytestmark = pytest.mark.integration

ADMIN = "admin-" + "k" * 24
SEND = {"phone": "12025550100", "message": "hi"}

# (method, path, headers, body) a key bound to sessions a and b may call: never 401/403.
FULL_ALLOWED = [
    ("GET", "/api/sessions/a", {}, None),
    ("PATCH", "/api/sessions/b", {}, {"config": {"auto_mark_read": True}}),
    ("GET", "/api/a/app/status", {}, None),
    ("GET", "/app/status", {"X-Device-Id": "b"}, None),
    ("GET", "/app/status?device_id=a", {}, None),
    ("GET", "/devices/b", {}, None),
    ("GET", "/devices/a/status", {}, None),
    ("POST", "/api/a/send/message", {}, SEND),
    ("POST", "/send/message", {"X-Device-Id": "b"}, SEND),
    ("GET", "/api/a/webhooks/deliveries", {}, None),
    ("POST", "/api/sessions/a/stop", {}, None),
    ("GET", "/openapi.json", {}, None),
]
# Routes of other sessions, gateway-wide data and admin operations: 403 FORBIDDEN.
FULL_FORBIDDEN = [
    ("GET", "/api/sessions/c", {}, None),
    ("GET", "/api/c/app/status", {}, None),
    ("POST", "/api/c/send/message", {}, SEND),
    ("GET", "/app/status", {"X-Device-Id": "c"}, None),
    ("GET", "/app/status?device_id=c", {}, None),
    ("GET", "/app/status", {}, None),  # resolves to "default"
    ("POST", "/send/message", {"X-Device-Id": "c"}, SEND),
    ("GET", "/devices/c", {}, None),
    ("POST", "/api/sessions/c/start", {}, None),
    ("GET", "/api/sessions", {}, None),
    ("POST", "/api/sessions", {}, {"session_id": "d", "start": False}),
    ("DELETE", "/api/sessions/a", {}, None),
    ("GET", "/devices", {}, None),
    ("POST", "/devices", {}, {"device_id": "d"}),
    ("DELETE", "/devices/a", {}, None),
    ("GET", "/app/devices", {}, None),
    ("GET", "/api/a/app/devices", {}, None),
    ("GET", "/api/keys", {}, None),
    ("POST", "/api/keys", {}, {"sessions": ["a"]}),
    ("GET", "/metrics", {}, None),
    ("GET", "/api/dashboard/stats", {}, None),
    ("GET", "/api/dashboard/sessions", {}, None),
    ("GET", "/api/dashboard/sessions/a", {}, None),
    ("GET", "/api/dashboard/metrics", {}, None),
]
# A read-only key bound to session a.
READ_ALLOWED = [
    ("GET", "/api/sessions/a", {}, None),
    ("GET", "/api/a/app/status", {}, None),
    ("GET", "/app/status", {"X-Device-Id": "a"}, None),
    ("GET", "/devices/a", {}, None),
    ("GET", "/api/a/webhooks/deliveries", {}, None),
    ("HEAD", "/api/sessions/a", {}, None),
]
READ_FORBIDDEN = [
    ("POST", "/api/a/send/message", {}, SEND),
    ("PATCH", "/api/sessions/a", {}, {"config": {"auto_mark_read": True}}),
    ("POST", "/api/sessions/a/start", {}, None),
    ("GET", "/api/a/app/login", {}, None),
    ("GET", "/api/a/app/logout", {}, None),
    ("GET", "/app/reconnect", {"X-Device-Id": "a"}, None),
    ("GET", "/api/a/group/invite-link?group_id=1@g.us", {}, None),
    ("GET", "/devices/a/login", {}, None),
    ("GET", "/api/sessions/b", {}, None),
]


def _call(http: Http, key: str, method: str, path: str, headers: dict, body: object):
    return http.call(method, path, body, headers={"X-Api-Key": key, **headers})


def _check(http: Http, key: str, allowed: list, forbidden: list) -> None:
    for method, path, headers, body in allowed:
        status, answer = _call(http, key, method, path, headers, body)
        assert status not in (401, 403), (method, path, headers, status, answer)
    for method, path, headers, body in forbidden:
        status, answer = _call(http, key, method, path, headers, body)
        assert status == 403, (method, path, headers, status, answer)
        assert answer["code"] == "FORBIDDEN" and answer["results"] is None, answer


def test_scoped_keys_matrix_events_revocation(gateway_factory):
    gateway = gateway_factory({"GOWA_API_KEY": ADMIN, "GOWA_HOST": "127.0.0.1"})
    http = gateway.http
    for session_id in ("a", "b", "c"):
        status, body = http.post("/api/sessions", {"session_id": session_id, "start": False})
        assert status == 201, body

    status, body = http.post("/api/keys", {"sessions": ["a", "b"], "scope": "full", "name": "crm"})
    assert status == 201, body
    full = body["results"]
    assert full["key"].startswith(full["prefix"]) and full["sessions"] == ["a", "b"]
    status, body = http.post("/api/keys", {"sessions": ["a"], "scope": "read"})
    assert status == 201, body
    read = body["results"]
    # Bad requests: a session that does not exist, an invalid id, an unknown scope.
    assert http.post("/api/keys", {"sessions": ["nope"]})[0] == 404
    assert http.post("/api/keys", {"sessions": ["../x"]})[0] == 400
    assert http.post("/api/keys", {"sessions": ["a"], "scope": "admin"})[0] == 400
    assert http.post("/api/keys", {"sessions": []})[0] == 400

    # Listed without the secret (nor its digest), with the prefix to recognise it by.
    status, body = http.get("/api/keys")
    assert status == 200 and {k["id"] for k in body["results"]} == {full["id"], read["id"]}
    listing = json.dumps(body)
    assert full["key"] not in listing and full["key"].rsplit("_", 1)[-1][:16] not in listing
    assert "digest" not in listing

    _check(http, full["key"], FULL_ALLOWED, FULL_FORBIDDEN)
    _check(http, read["key"], READ_ALLOWED, READ_FORBIDDEN)
    # The dashboard login takes the admin credential only.
    assert http.post("/api/dashboard/login", {"api_key": full["key"]})[0] == 403
    # A key with a wrong secret, or a made-up id, is no key.
    forged = full["key"][:-4] + "AAAA"
    assert _call(http, forged, "GET", "/api/sessions/a", {}, None)[0] == 401

    # The event stream: the scoped key sees its sessions' events only.
    ws = http.base.replace("http", "ws") + "/api/dashboard/events"
    admin_events = EventWatcher(ws, {"X-Api-Key": ADMIN})
    scoped_events = EventWatcher(ws, {"X-Api-Key": full["key"]})
    status, _ = _call(http, full["key"], "GET", "/api/dashboard/events?session_id=c", {}, None)
    assert status == 403
    try:
        for session_id in ("c", "a"):
            assert http.post(f"/api/sessions/{session_id}/start")[0] == 200
        admin_events.wait(lambda e: e["session_id"] == "c", 30, "an event of c (admin)")
        admin_events.wait(lambda e: e["session_id"] == "a", 30, "an event of a (admin)")
        scoped_events.wait(lambda e: e["session_id"] == "a", 30, "an event of a (scoped)")
        assert not scoped_events.find(lambda e: e["session_id"] not in ("a", "b"))

        # Revoked: 401 at once, and its stream is closed.
        status, body = http.call("DELETE", f"/api/keys/{full['id']}")
        assert status == 200, body
        assert http.call("DELETE", f"/api/keys/{full['id']}")[0] == 404
        assert _call(http, full["key"], "GET", "/api/sessions/a", {}, None)[0] == 401
        wait_until(lambda: not scoped_events._thread.is_alive(), 10, what="stream closed")
    finally:
        admin_events.close()
        scoped_events.close()

    # Deleting a session takes it off every key; a key left with none is gone.
    assert http.call("DELETE", "/api/sessions/a")[0] == 200
    assert http.get("/api/keys")[1]["results"] == []
    assert _call(http, read["key"], "GET", "/api/sessions/a", {}, None)[0] == 401

    # Keys live in gowa.db, hashed: they survive a restart, the secret is not stored.
    status, body = http.post("/api/keys", {"sessions": ["b"], "scope": "read"})
    kept = body["results"]
    for path in gateway.data_dir.glob("gowa.db*"):
        assert kept["key"].encode() not in path.read_bytes(), path
    gateway.stop()
    gateway.start()
    assert _call(http, kept["key"], "GET", "/api/sessions/b", {}, None)[0] == 200
    assert _call(http, kept["key"], "GET", "/api/sessions/c", {}, None)[0] == 403
