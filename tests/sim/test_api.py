"""The sandbox JSON API, on an in-process SimServer (same port as the proxy)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
import uvloop

from gowa_py.sim.certs import xeddsa_verify
from gowa_py.sim.prekeys import KEY_TYPE_DJB
from gowa_py.sim.server import SimServer


@pytest.fixture
async def sim(tmp_path: Path):
    async with SimServer(tmp_path / "sim") as server:
        yield server


@pytest.fixture
async def http(sim: SimServer):
    async with aiohttp.ClientSession(base_url=sim.url) as session:
        yield session


async def test_phone_lifecycle(http: aiohttp.ClientSession) -> None:
    resp = await http.post("/sim/phones", json={"phone": "15550000001", "push_name": "Alice"})
    assert resp.status == 201
    created = await resp.json()
    assert created["phone"] == "15550000001" and created["push_name"] == "Alice"
    assert created["devices"] == [] and created["lid"].endswith("@lid")

    resp = await http.post("/sim/phones", json={"phone": "15550000001"})
    assert resp.status == 409 and (await resp.json())["code"] == "PHONE_EXISTS"
    resp = await http.get("/sim/phones")
    assert [p["phone"] for p in await resp.json()] == ["15550000001"]
    resp = await http.get("/sim/phones/15550000001")
    assert (await resp.json())["lid"] == created["lid"]


async def test_a_switched_off_phone_has_a_device_with_a_valid_bundle(
    http: aiohttp.ClientSession, sim: SimServer
) -> None:
    await http.post("/sim/phones", json={"phone": "15550000001"})
    resp = await http.post("/sim/phones/15550000001/devices")
    assert resp.status == 201
    added = await resp.json()
    assert added["device"] == 1 and added["jid"] == "15550000001:1@s.whatsapp.net"
    phone = await (await http.get("/sim/phones/15550000001")).json()
    assert phone["devices"] == [
        {**added, "connected": False, "queued": 0, "replaced": 0, "app_state_fetched": []}
    ]
    device = sim.store.device("15550000001", 1)
    assert device is not None
    assert xeddsa_verify(device.identity_pub, KEY_TYPE_DJB + device.skey_pub, device.skey_sig)
    resp = await http.post("/sim/phones/15559999999/devices")
    assert resp.status == 404 and (await resp.json())["code"] == "PHONE_NOT_FOUND"


@pytest.mark.parametrize(
    "body",
    [
        {"phone": "123"},
        {"phone": "1234567890123456"},
        {"phone": "+15550000001"},
        {"phone": 15550000001},
        {},
        [1, 2],
    ],
)
async def test_create_phone_validation(http: aiohttp.ClientSession, body: object) -> None:
    resp = await http.post("/sim/phones", json=body)
    assert resp.status == 400
    error = await resp.json()
    assert set(error) == {"code", "message"}


async def test_errors_are_json(http: aiohttp.ClientSession) -> None:
    resp = await http.post("/sim/phones", data=b"{not json")
    assert resp.status == 400 and (await resp.json())["code"] == "INVALID_JSON"
    resp = await http.get("/sim/phones/15559999999")
    assert resp.status == 404 and (await resp.json())["code"] == "PHONE_NOT_FOUND"
    resp = await http.get("/sim/nothing")
    assert resp.status == 404 and "code" in await resp.json()
    await http.post("/sim/phones", json={"phone": "15550000001"})
    resp = await http.post("/sim/phones/15550000001/scan", json={"qr": "garbage"})
    assert resp.status == 400 and (await resp.json())["code"] == "INVALID_QR"
    qr = "https://wa.me/settings/linked_devices#2@ref," + ",".join(["A" * 43 + "="] * 3) + ",6"
    resp = await http.post("/sim/phones/15550000001/scan", json={"qr": qr})
    assert resp.status == 404 and (await resp.json())["code"] == "QR_NOT_FOUND"
    resp = await http.post("/sim/phones/15550000001/scan", json={"qr": qr, "passkey": True})
    assert resp.status == 404 and (await resp.json())["code"] == "QR_NOT_FOUND"
    resp = await http.post("/sim/phones/15550000001/scan", json={"qr": qr, "passkey": "yes"})
    assert resp.status == 400 and (await resp.json())["code"] == "VALIDATION_ERROR"
    resp = await http.post("/sim/phones/15550000001/unlink", json={"device": 3})
    assert resp.status == 404 and (await resp.json())["code"] == "DEVICE_NOT_FOUND"
    resp = await http.post("/sim/phones/15550000001/unlink", json={"device": "x"})
    assert resp.status == 400
    resp = await http.post("/sim/phones/15550000001/send", json={"to": "15550000009", "text": "x"})
    assert resp.status == 404


async def test_faults(http: aiohttp.ClientSession, sim: SimServer) -> None:
    resp = await http.post("/sim/faults", json={"delay_ms": 200})
    assert await resp.json() == {"delay_ms": 200, "dropped": 0}
    assert sim.network.faults.delay_ms == 200
    resp = await http.post("/sim/faults", json={})
    assert await resp.json() == {"delay_ms": 0, "dropped": 0}
    resp = await http.post("/sim/faults", json={"delay_ms": -1})
    assert resp.status == 400


async def test_info_and_health(http: aiohttp.ClientSession, sim: SimServer) -> None:
    info = await (await http.get("/sim/info")).json()
    assert info["proxy"] == sim.url
    assert info["ca_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert bytes.fromhex(info["root_key"]) == sim.root_key and len(info["root_key"]) == 64
    health = await (await http.get("/sim/healthz")).json()
    assert health["status"] == "ok"


async def test_proxy_refuses_other_targets(sim: SimServer) -> None:
    reader, writer = await asyncio.open_connection(sim.host, sim.port)
    writer.write(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    await writer.drain()
    assert (await reader.readline()).startswith(b"HTTP/1.1 403")
    writer.close()


def test_the_front_door_serves_on_uvloop(tmp_path: Path) -> None:
    """``gowa sim serve`` runs on uvloop, whose transports are not asyncio.Transport's."""

    async def health() -> tuple[int, dict]:
        timeout = aiohttp.ClientTimeout(total=10)
        async with SimServer(tmp_path / "sim") as server:
            url = server.url + "/sim/healthz"
            async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as answer:
                return answer.status, await answer.json()

    status, body = uvloop.run(health())
    assert status == 200 and body["status"] == "ok"
