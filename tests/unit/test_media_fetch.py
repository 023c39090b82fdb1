"""``*_url`` media is fetched by the gateway for a tenant: it must not reach internal hosts."""

import io

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port
from PIL import Image


@pytest.fixture
async def client(make_client):
    return await _with_session(await make_client())


async def _with_session(test_client):
    await test_client.post("/api/sessions", json={"session_id": "m", "start": False})
    return test_client


@pytest.fixture
async def internal_server():
    """A real HTTP server on loopback standing in for an internal service."""
    app = web.Application()

    picture = io.BytesIO()
    Image.new("RGB", (1, 1)).save(picture, "PNG")  # a picture: the gateway checks

    async def secret(_request):
        return web.Response(body=picture.getvalue())

    async def hop(_request):
        raise web.HTTPFound("/secret.png")

    app.router.add_get("/secret.png", secret)
    app.router.add_get("/hop", hop)
    runner = web.AppRunner(app)
    await runner.setup()
    port = unused_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port
    await runner.cleanup()


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::1]",
        # IPv6 forms that carry 127.0.0.1: mapped, compatible, NAT64, 6to4.
        "[::ffff:127.0.0.1]",
        "[::127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::1]",
    ],
)
async def test_internal_media_urls_are_refused(client, internal_server, host):
    url = f"http://{host}:{internal_server}/secret.png"
    response = await client.post(
        "/api/m/send/image", data={"phone": "15550001111", "image_url": url}
    )
    body = await response.json()
    assert (response.status, body["code"]) == (400, "MEDIA_URL_BLOCKED"), body
    assert "webhook_allow_networks" in body["message"] or "address" in body["message"]


async def test_allowed_network_is_fetched_but_redirects_are_not(make_client, internal_server):
    client = await _with_session(await make_client({"GOWA_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8"}))
    url = f"http://127.0.0.1:{internal_server}"
    response = await client.post(
        "/api/m/send/image", data={"phone": "15550001111", "image_url": url + "/secret.png"}
    )
    # Fetched; the session is stopped, so the send itself is unavailable.
    assert (response.status, (await response.json())["code"]) == (503, "SESSION_UNAVAILABLE")
    response = await client.post(
        "/api/m/send/image", data={"phone": "15550001111", "image_url": url + "/hop"}
    )
    body = await response.json()
    assert (response.status, body["code"]) == (400, "MEDIA_DOWNLOAD_FAILED")
    assert "redirect" in body["message"]
