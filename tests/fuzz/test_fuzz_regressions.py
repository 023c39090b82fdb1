"""Inputs the fuzzers found that used to give a 500; each must be a 4xx JSON error."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gowa_py.config import load_settings
from gowa_py.gateway.app import create_app


@pytest.fixture
async def client(tmp_path):
    app = create_app(load_settings({}, {}), tmp_path / "data")
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


async def _error(response):
    body = await response.json()
    assert set(body) == {"code", "message", "results"}
    return response.status, body["code"]


async def test_malformed_multipart_part_headers(client):
    boundary = "b0undary"
    raw = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="\xa7v\x13"\r\n\r\nx\r\n'
        f"--{boundary}--\r\n"
    ).encode("latin-1")
    response = await client.post(
        "/send/audio",
        data=raw,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    status, _ = await _error(response)
    assert 400 <= status < 500


@pytest.mark.parametrize("url", ["http://a\u0097b.example/hook", "http://xn--/hook"])
async def test_webhook_url_with_invalid_host(client, url):
    response = await client.post(
        "/api/sessions",
        json={"session_id": "w", "start": False, "config": {"webhooks": [{"url": url}]}},
    )
    assert await _error(response) == (400, "VALIDATION_ERROR")


async def test_device_routes_apply_the_webhook_policy(client):
    response = await client.post(
        "/devices", json={"device_id": "d1", "webhook_url": "http://169.254.169.254/x"}
    )
    assert await _error(response) == (400, "VALIDATION_ERROR")
    assert (await client.post("/devices", json={"device_id": "d2"})).status == 200
    response = await client.patch(
        "/devices/d2/webhook", json={"webhook_url": "http://127.0.0.1:9/x"}
    )
    assert await _error(response) == (400, "VALIDATION_ERROR")


@pytest.mark.parametrize("query", ["offset=99999999999999999999999", "limit=-1"])
async def test_huge_integers_in_queries(client, query):
    response = await client.post("/api/sessions", json={"session_id": "q", "start": False})
    assert response.status == 201
    response = await client.get(f"/api/q/chats?{query}")
    assert await _error(response) == (400, "VALIDATION_ERROR")


MULTIPART = "multipart/form-data; boundary=b"
AS_JSON = "application/json"


@pytest.mark.parametrize(
    ("path", "content_type", "raw"),
    [
        ("/send/image", "multipart/form-data", b"--x\r\n"),  # no boundary parameter
        ("/send/image", MULTIPART, b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n"),
        ("/send/image", MULTIPART, b"no start boundary\r\n--b--\r\n"),
        (
            "/send/image",
            MULTIPART,
            b'--b\r\nContent-Disposition: form-data; name="phone"\r\n\r\n\xff\xfe\r\n--b--\r\n',
        ),
        (
            "/send/image",
            MULTIPART,
            b'--b\r\nContent-Disposition: form-data; name="phone"\r\n'
            b"Content-Type: text/plain; charset=no-such\r\n\r\nx\r\n--b--\r\n",
        ),
        ("/send/image", "application/x-www-form-urlencoded; charset=no-such", b"phone=1"),
        ("/send/image", "application/x-www-form-urlencoded", b"phone=\xff"),
        ("/api/sessions", AS_JSON, b'{"session_id": "\xff"}'),
        ("/api/sessions", AS_JSON, b"[" * 100_000 + b"]" * 100_000),
        ("/send/message", AS_JSON, b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
        ("/send/message", "application/json; charset=no-such", b"{}"),
    ],
    ids=[
        "multipart-no-boundary",
        "multipart-nameless-field",
        "multipart-no-start-boundary",
        "multipart-invalid-utf8",
        "multipart-unknown-charset",
        "form-unknown-charset",
        "form-invalid-utf8",
        "json-invalid-utf8",
        "json-100k-deep-array",
        "json-100k-deep-object",
        "json-unknown-charset",
    ],
)
async def test_malformed_bodies(client, path, content_type, raw):
    response = await client.post(path, data=raw, headers={"Content-Type": content_type})
    status, _ = await _error(response)
    assert 400 <= status < 500
