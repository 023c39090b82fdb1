"""GoWA's three media sizes (pictures, videos, other files), for uploads and ``*_url`` alike,
and JSON bodies held to ``max_body_mb`` although the app accepts the largest upload."""

from __future__ import annotations

import io

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import unused_port
from PIL import Image

KB = 1024
IMAGE, FILE, VIDEO, BODY = 16 * KB, 32 * KB, 64 * KB, 8 * KB
LIMITS = {
    "GOWA_MAX_BODY_MB": str(BODY / 2**20),
    "GOWA_MAX_IMAGE_MB": str(IMAGE / 2**20),
    "GOWA_MAX_FILE_MB": str(FILE / 2**20),
    "GOWA_MAX_VIDEO_MB": str(VIDEO / 2**20),
    "GOWA_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
async def client(make_client):
    client = await make_client(LIMITS)
    await client.post("/api/sessions", json={"session_id": "m", "start": False})
    return client


@pytest.fixture
async def files():
    """A loopback server for ``*_url`` media: ``/<bytes>.bin`` answers that many bytes."""

    async def sized(request: web.Request) -> web.Response:
        return web.Response(body=b"\0" * int(request.match_info["size"]))

    app = web.Application()
    app.router.add_get("/{size:[0-9]+}.bin", sized)
    runner = web.AppRunner(app)
    await runner.setup()
    port = unused_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def send(client, route: str, field: str, data: bytes) -> tuple[int, dict]:
    form = FormData()
    form.add_field("phone", "15550001111")
    form.add_field(field, data, filename="x.bin", content_type="application/octet-stream")
    response = await client.post(f"/api/m/send/{route}", data=form)
    return response.status, await response.json()


KINDS = [
    ("image", "image", IMAGE),
    ("sticker", "sticker", IMAGE),
    ("video", "video", VIDEO),
    ("file", "file", FILE),
    ("audio", "audio", FILE),
]


async def test_each_kind_has_its_limit(client):
    for route, field, limit in KINDS:
        data = png() if field in ("image", "sticker") else b"\0" * limit
        status, body = await send(client, route, field, data)
        # Within the limit: accepted, then the stopped session is unavailable.
        assert (status, body["code"]) == (503, "SESSION_UNAVAILABLE"), (field, body)
        status, body = await send(client, route, field, b"\0" * (limit + 1))
        assert (status, body["code"]) == (413, "PAYLOAD_TOO_LARGE"), (field, body)
        assert f"{field} is larger than the {limit / 2**20:g} MB limit" in body["message"]


async def test_url_media_json_bodies_and_app_info(client, files):
    """``*_url`` media by the same limits; JSON bodies by ``max_body_mb``; /app/info."""
    for route, field, limit in (("file", "file", FILE), ("video", "video", VIDEO)):
        for size, expected in ((limit, 503), (limit + 1, 413)):
            response = await client.post(
                f"/api/m/send/{route}",
                data={"phone": "15550001111", f"{field}_url": f"{files}/{size}.bin"},
            )
            assert response.status == expected, await response.text()

    response = await client.post(
        "/api/sessions", data=b" " * (BODY + 1), headers={"Content-Type": "application/json"}
    )
    body = await response.json()
    assert (response.status, body["code"]) == (413, "PAYLOAD_TOO_LARGE"), body
    response = await client.get("/app/info")
    info = (await response.json())["results"]
    sizes = (info["max_image_size"], info["max_file_size"], info["max_video_size"])
    assert sizes == (IMAGE, FILE, VIDEO)
