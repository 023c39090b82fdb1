"""A request body that trickles in is cut off after ``body_timeout``, in every auth mode."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

KEY = "k" * 32


async def _trickle(port: int, extra_headers: str, linger: float = 0) -> tuple[float, bytes]:
    """Send headers announcing 1000 bytes, then one byte every 0.2 s; return how long the
    gateway took to answer and end its stream, and what it answered. The client keeps
    sending for ``linger`` seconds more before it closes."""
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
        took = time.monotonic() - started
        await asyncio.sleep(linger)
    finally:
        dripping.cancel()
        writer.close()
    return took, answer


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


async def test_a_client_still_sending_after_the_answer_is_no_error(make_client, caplog):
    """The body's stream stays failed after the ``408``: a client still sending once the
    gateway stops waiting for it to close is the expected end, not an unhandled error."""
    client = await make_client({}, body_timeout=0.5)
    caplog.clear()  # the gateway's start, which may warn about this host
    with caplog.at_level(logging.DEBUG):
        _, answer = await _trickle(client.port, "", linger=2.0)
        await asyncio.sleep(0.2)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
