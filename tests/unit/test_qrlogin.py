"""The live QR code per session, followed from events (pure logic)."""

from __future__ import annotations

import asyncio
import time

from gowa_py import protocol as p
from gowa_py.supervisor.qrlogin import QrCodes


def event(name: str, payload: dict, at: float) -> p.Event:
    return p.Event(id=name, session_id="s", name=name, timestamp=at, payload=payload, seq=1)


def qr(code: str, at: float) -> p.Event:
    return event("session.qr", {"qr_code": code, "qr_duration": 60, "sequence": 1}, at)


def status(state: p.SessionState, at: float) -> p.Event:
    return event("session.status", {"status": state.value, "error": None}, at)


def test_a_code_shows_until_the_session_leaves_scan_qr_code():
    codes = QrCodes()
    started = time.time()
    codes.observe(status(p.SessionState.SCAN_QR_CODE, started + 1), started)
    codes.observe(qr("2@first", started + 1), started)
    assert codes.current("s") == p.QRCode(code="2@first", expires_at=started + 61)
    codes.observe(qr("2@second", started + 2), started)
    assert codes.current("s").code == "2@second"
    codes.observe(status(p.SessionState.SCAN_QR_CODE, started + 3), started)
    assert codes.current("s").code == "2@second"
    codes.observe(status(p.SessionState.CONNECTED, started + 4), started)
    assert codes.current("s") is None


def test_a_code_of_an_earlier_worker_is_not_shown():
    codes = QrCodes()
    started = time.time()
    codes.observe(qr("2@old", started - 5), started)  # replayed from the log
    codes.observe(qr("2@unknown-worker", started), None)
    assert codes.current("s") is None
    codes.observe(event("session.qr", {"qr_code": None}, started + 1), started)
    assert codes.current("s") is None


async def test_a_waiter_wakes_at_the_next_code_or_at_its_timeout():
    codes = QrCodes()
    started = time.time()
    waiter = asyncio.create_task(codes.changed("s", 5.0))
    await asyncio.sleep(0)
    codes.observe(event("message", {}, started + 1), started)  # not a QR or status change
    await asyncio.sleep(0.01)
    assert not waiter.done()
    codes.observe(qr("2@new", started + 1), started)
    async with asyncio.timeout(1):
        await waiter
    begun = time.monotonic()
    await codes.changed("s", 0.05)
    assert time.monotonic() - begun >= 0.04
