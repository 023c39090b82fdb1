"""A request body that trickles in is cut off after ``body_timeout``, in every auth mode."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

KEY = "k" * 32


async def _trickle(port: int, extra_headers: str) -> tuple[float, bytes]:
    """Send headers announcing 1000 bytes, then one byte every 0.2 s; return how long the
    gateway took to answer and close, and what it answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            "POST /api/sessions HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\n"
            f"{extra_headers}"
            "Content-Length: 1000\r\n\r\n{"
        ).encode()
    )
    started = time.monotonic()

    async def drip() -> None:
        while True:
            await asyncio.sleep(0.2)
            writer.write(b" ")
            await writer.drain()

    dripping = asyncio.create_task(drip())
    try:
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        dripping.cancel()
        writer.close()
    return time.monotonic() - started, answer


@pytest.mark.parametrize("env", [{}, {"GOWA_API_KEY": KEY}], ids=["no-auth", "api-key"])
async def test_trickling_body_is_cut_off(make_client, env):
    client = await make_client(env, body_timeout=1.0)
    key = f"X-Api-Key: {KEY}\r\n" if env else ""
    took, answer = await _trickle(client.port, key)
    assert 0.9 < took < 3, took
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), head
    assert json.loads(body)["code"] == "REQUEST_TIMEOUT"
    # The gateway is fine, and a body that arrives in time is read as usual.
    new = {"session_id": "t1", "start": False}
    headers = {"X-Api-Key": KEY} if env else {}
    assert (await client.post("/api/sessions", json=new, headers=headers)).status == 201
