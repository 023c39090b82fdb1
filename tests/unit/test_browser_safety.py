"""A web page in the user's browser cannot drive or read the gateway (no worker started).

The attacks come as a browser sends them: a forged ``Host`` after DNS rebinding, a foreign
``Origin`` or ``Sec-Fetch-Site``, a form or ``text/plain`` body, a WebSocket from another
page. Each in the no-credentials mode (where any local page reaches 127.0.0.1) and, where
a login cookie matters, with credentials.
"""

from __future__ import annotations

import aiohttp
import pytest

from gowa_py.config import ConfigError, load_settings
from gowa_py.gateway.websessions import COOKIE_NAME

KEY = "k" * 32
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02"
    b"\x00\x00\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe"
    b"\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82"
)
NEW = '{"session_id": "web1", "start": false}'


async def _body(response):
    return response.status, await response.json()


def _own(client) -> str:
    return f"http://127.0.0.1:{client.port}"


@pytest.mark.parametrize(
    "host", ["attacker-rebind.example:3000", "evil.example", "127.0.0.1.evil.example", "a b", ""]
)
async def test_rebound_host_is_refused(make_client, host):
    client = await make_client()
    status, body = await _body(await client.get("/api/sessions", headers={"Host": host}))
    assert (status, body["code"], body["results"]) == (421, "HOST_NOT_ALLOWED", None)


async def test_loopback_bound_and_configured_hosts_are_served(make_client):
    client = await make_client({"GOWA_ALLOWED_HOSTS": "gowa.example.com, 10.0.0.5:8443"})
    for host in (
        f"127.0.0.1:{client.port}",
        "localhost:8080",
        "LOCALHOST.",
        "[::1]:3000",
        "gowa.example.com",
        "gowa.example.com:443",
        "10.0.0.5:8443",
    ):
        assert (await client.get("/api/sessions", headers={"Host": host})).status == 200, host
    refused = await client.get("/api/sessions", headers={"Host": "10.0.0.5:80"})
    assert refused.status == 421
    with pytest.raises(ConfigError, match="allowed_hosts"):
        load_settings({}, {"GOWA_ALLOWED_HOSTS": "a/b"})


async def test_bound_host_is_an_allowed_name(make_client):
    client = await make_client({"GOWA_API_KEY": KEY, "GOWA_HOST": "192.0.2.7"})
    headers = {"Host": "192.0.2.7:3000", "X-Api-Key": KEY}
    assert (await client.get("/api/sessions", headers=headers)).status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:1"},  # another local server: a loopback name, not our port
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
async def test_cross_site_state_change_is_refused(make_client, headers):
    client = await make_client()
    headers = {"Content-Type": "application/json", **headers}
    status, body = await _body(await client.post("/api/sessions", data=NEW, headers=headers))
    assert (status, body["code"]) == (403, "CROSS_SITE_REQUEST")
    # GoWA's logout is a GET: an <img> on another site must not reach it either.
    status, body = await _body(await client.get("/app/logout", headers=headers))
    assert (status, body["code"]) == (403, "CROSS_SITE_REQUEST")
    assert (await client.get("/api/sessions/web1")).status == 404


async def test_same_origin_and_non_browser_clients_work(make_client):
    client = await make_client()
    own = {"Origin": _own(client), "Sec-Fetch-Site": "same-origin"}
    response = await client.post("/api/sessions", data=NEW, headers=own | _JSON)
    assert response.status == 201
    # curl and SDKs: no Origin, no Sec-Fetch-*.
    other = {"session_id": "web2", "start": False}
    assert (await client.post("/api/sessions", json=other)).status == 201
    # Following a link from another site to the dashboard page opens it.
    link = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    assert (await client.get("/dashboard", headers=link)).status == 200


_JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        None,
    ],
)
async def test_json_routes_never_read_form_bodies(make_client, content_type):
    """What an HTML form (or ``curl -d``) sends is not JSON, on every JSON route alike."""
    client = await make_client()
    await client.post("/api/sessions", json={"session_id": "s", "start": False})
    headers = {"Content-Type": content_type} if content_type else {"Content-Type": ""}
    for path in ("/api/sessions", "/send/message", "/api/s/send/message", "/api/s/chat/x/pin"):
        status, body = await _body(await client.post(path, data=NEW, headers=headers))
        assert (status, body["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE"), path
        assert "application/json" in body["message"]
    assert (await client.get("/api/sessions/web1")).status == 404
    utf8 = {"Content-Type": "application/json; charset=UTF-8"}
    assert (await client.post("/api/sessions", data=NEW, headers=utf8)).status == 201


async def test_multipart_routes_take_forms_but_not_from_other_sites(make_client):
    client = await make_client()
    await client.post("/api/sessions", json={"session_id": "web1", "start": False})
    form = aiohttp.FormData()
    form.add_field("phone", "15550000001")
    form.add_field("image", PNG, filename="a.png", content_type="image/png")
    response = await client.post("/api/web1/send/image", data=form)
    status, body = await _body(response)
    # Read and validated as a form, then refused because the session is not running.
    assert status not in (403, 415) and body["code"] != "VALIDATION_ERROR", body
    form = aiohttp.FormData()
    form.add_field("phone", "15550000001")
    form.add_field("image", PNG, filename="a.png", content_type="image/png")
    evil = {"Origin": "http://evil.example"}
    status, body = await _body(await client.post("/api/web1/send/image", data=form, headers=evil))
    assert (status, body["code"]) == (403, "CROSS_SITE_REQUEST")


async def test_event_stream_checks_origin(make_client):
    client = await make_client()
    for origin in ("http://evil.example", "http://localhost:1"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/api/dashboard/events", headers={"Origin": origin})
        assert refused.value.status == 403
    async with client.ws_connect("/api/dashboard/events", headers={"Origin": _own(client)}) as ws:
        assert not ws.closed
    async with client.ws_connect("/api/dashboard/events") as ws:  # not a browser
        assert not ws.closed


async def test_cookie_origin_is_not_compared_with_the_client_host(make_client):
    """A page on another local port sends Host and Origin that agree with each other; the
    dashboard cookie must still not work for it."""
    client = await make_client({"GOWA_API_KEY": KEY})
    response = await client.post("/api/dashboard/login", json={"api_key": KEY})
    csrf = (await response.json())["results"]["csrf_token"]
    assert response.cookies[COOKIE_NAME]
    headers = {"X-CSRF-Token": csrf, "Host": "localhost:9", "Origin": "http://localhost:9"}
    new = {"session_id": "c1", "start": False}
    status, body = await _body(await client.post("/api/sessions", json=new, headers=headers))
    assert (status, body["code"]) == (403, "CROSS_SITE_REQUEST")
    own = {"X-CSRF-Token": csrf, "Origin": _own(client)}
    assert (await client.post("/api/sessions", json=new, headers=own)).status == 201
