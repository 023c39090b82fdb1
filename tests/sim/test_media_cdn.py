"""The sandbox media CDN over its real path: CONNECT through the proxy, TLS from the sandbox
CA, then whatsmeow's upload and download requests (here sent by aiohttp)."""

from __future__ import annotations

import base64
import hashlib
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gowa_py.sim.media import MediaStore
from gowa_py.sim.server import SimServer

CDN = "https://mmg.whatsapp.net"
LIMIT = 1 << 20


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimServer]:
    async with SimServer(tmp_path / "sim", max_upload=LIMIT) as server:
        yield server


@pytest.fixture
async def cdn(sim: SimServer) -> AsyncIterator[aiohttp.ClientSession]:
    tls = ssl.create_default_context(cafile=str(sim.ca_pem_path))
    async with aiohttp.ClientSession(
        proxy=sim.url, connector=aiohttp.TCPConnector(ssl=tls)
    ) as session:
        yield session


def token(blob: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(blob).digest()).decode()


def upload_url(sim: SimServer, blob: bytes, kind: str = "document", auth: str = "") -> str:
    tok = token(blob)
    return f"{CDN}/mms/{kind}/{tok}?auth={auth or sim.media.issue_auth()}&token={tok}"


def stored(sim: SimServer) -> list[str]:
    return sorted(p.name for p in sim.media.folder.iterdir() if p.name != "auth.key")


async def test_upload_then_download_by_direct_path_and_url(
    sim: SimServer, cdn: aiohttp.ClientSession
) -> None:
    blob = os.urandom(300_000)
    async with cdn.post(upload_url(sim, blob, "video"), data=blob) as resp:
        assert resp.status == 200, await resp.text()
        answer = await resp.json()
    direct_path = answer["direct_path"]
    assert direct_path.startswith("/v/t62.7161-24/") and "?" in direct_path
    assert answer["url"].startswith(f"{CDN}{direct_path}")
    # whatsmeow's download URL: the direct path plus its own query parameters.
    async with cdn.get(f"{CDN}{direct_path}&hash={token(blob)}&mms-type=video") as resp:
        assert resp.status == 200
        assert await resp.read() == blob
    async with cdn.get(answer["url"]) as resp:
        assert await resp.read() == blob
    assert len(stored(sim)) == 1 and stored(sim)[0].endswith(".enc")


async def test_unknown_media_is_a_clear_404(sim: SimServer, cdn: aiohttp.ClientSession) -> None:
    for path in ("/v/t62.7119-24/" + "0" * 32 + ".enc?ccb=11-4", "/../sim.db", "/"):
        async with cdn.get(CDN + path) as resp:
            assert resp.status == 404, path
            assert (await resp.json())["code"] == "MEDIA_NOT_FOUND"


async def test_bad_auth_or_hash_stores_nothing(sim: SimServer, cdn: aiohttp.ClientSession) -> None:
    blob = os.urandom(1000)
    async with cdn.post(upload_url(sim, blob, auth="AAAA"), data=blob) as resp:
        assert (resp.status, (await resp.json())["code"]) == (401, "UNAUTHORIZED")
    async with cdn.post(upload_url(sim, blob), data=blob + b"x") as resp:
        assert (resp.status, (await resp.json())["code"]) == (400, "HASH_MISMATCH")
    tok = token(blob)
    wrong = f"{CDN}/mms/image/{tok}?auth={sim.media.issue_auth()}&token=other"
    async with cdn.post(wrong, data=blob) as resp:
        assert (resp.status, (await resp.json())["code"]) == (400, "INVALID_TOKEN")
    assert stored(sim) == []


async def test_oversize_upload_is_413_and_nothing_half_stored(
    sim: SimServer, cdn: aiohttp.ClientSession
) -> None:
    blob = os.urandom(LIMIT + 1)
    async with cdn.post(upload_url(sim, blob), data=blob) as resp:
        assert (resp.status, (await resp.json())["code"]) == (413, "PAYLOAD_TOO_LARGE")

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: refused mid-body
        for start in range(0, len(blob), 1 << 16):
            yield blob[start : start + (1 << 16)]

    async with cdn.post(upload_url(sim, blob), data=chunked()) as resp:
        assert resp.status == 413
    assert stored(sim) == []
    exact = blob[:LIMIT]
    async with cdn.post(upload_url(sim, exact), data=exact) as resp:
        assert resp.status == 200


async def test_media_and_upload_tokens_survive_a_restart(tmp_path: Path) -> None:
    blob = os.urandom(5000)
    async with SimServer(tmp_path / "sim") as sim:
        auth = sim.media.issue_auth()
        tls = ssl.create_default_context(cafile=str(sim.ca_pem_path))
        async with (
            aiohttp.ClientSession(proxy=sim.url, connector=aiohttp.TCPConnector(ssl=tls)) as cdn,
            cdn.post(upload_url(sim, blob, auth=auth), data=blob) as resp,
        ):
            direct_path = (await resp.json())["direct_path"]
    async with SimServer(tmp_path / "sim") as sim:
        async with (
            aiohttp.ClientSession(proxy=sim.url, connector=aiohttp.TCPConnector(ssl=tls)) as cdn,
            cdn.get(CDN + direct_path) as resp,
        ):
            assert await resp.read() == blob
        assert sim.media.auth_valid(auth)


def test_oldest_files_go_past_the_total_limit(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media", max_upload=1000, max_total=2500)
    paths = []
    for _ in range(3):
        part = store.new_part()
        part.write_bytes(os.urandom(1000))
        paths.append(store.commit(part, "image")[1].split("?")[0])
    assert store.blob(paths[0]) is None
    assert all(store.blob(path) is not None for path in paths[1:])
    assert len(list(store.folder.glob("*.enc"))) == 2
    (store.folder / "crashed.part").write_bytes(b"half")
    restarted = MediaStore(tmp_path / "media", max_upload=1000, max_total=2500)
    assert not list(restarted.folder.glob("*.part"))
    assert all(restarted.blob(path) is not None for path in paths[1:])


async def test_newsletter_uploads_are_stored_as_given(
    sim: SimServer, cdn: aiohttp.ClientSession
) -> None:
    """Newsletter media is not end-to-end encrypted: the token hashes the file itself."""
    data = os.urandom(2000)
    tok = token(data)
    url = f"{CDN}/newsletter/newsletter-image/{tok}?auth={sim.media.issue_auth()}&token={tok}"
    async with cdn.post(url, data=data) as resp:
        direct_path = (await resp.json())["direct_path"]
    async with cdn.get(CDN + direct_path) as resp:
        assert await resp.read() == data
