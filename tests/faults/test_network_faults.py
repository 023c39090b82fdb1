"""The sandbox network misbehaving: every connection dropped, or every frame delayed."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.integration


def _fault(rig, body: dict) -> dict:
    status, reply = rig.sandbox.api("POST", "/sim/faults", body)
    assert status == 200, reply
    return reply


def test_connection_drops_during_stream(rig_factory):
    """Injected: the sandbox closes every client connection three times (POST /sim/faults
    {"drop_connections": true}) while 100 messages stream over two pairs.

    Expected: every worker reconnects by itself (no restart), sends made while a session
    is reconnecting fail with 409/502/503 and succeed on retry, nothing accepted is lost.
    """
    rig = rig_factory()
    rig.add_pairs(2)
    with rig.stream(100, "drop"):
        for step in (20, 45, 70):
            rig.progress(step)
            assert _fault(rig, {"drop_connections": True})["dropped"] >= 4
    figures = rig.assert_nothing_lost()
    for session_id in rig.sessions():
        session = rig.gateway.wait_status(session_id, {"CONNECTED"})
        assert session["worker"]["restarts"] == 0, session
    print("drops", figures)


def test_latency_during_stream(rig_factory):
    """Injected: 200 ms of latency on every sandbox frame (POST /sim/faults {"delay_ms": 200})
    for the middle part of a 60-message stream, then back to none.

    Expected: sends are slower but succeed without retries (the command timeout is well
    above the added latency), nothing is lost or duplicated.
    """
    rig = rig_factory()
    rig.add_pairs(2)
    try:
        with rig.stream(60, "slow", rate=15):
            rig.progress(15)
            _fault(rig, {"delay_ms": 200})
            slow_from = time.monotonic()
            rig.progress(45)
            slow_for = time.monotonic() - slow_from
    finally:
        _fault(rig, {"delay_ms": 0})
    figures = rig.assert_nothing_lost()
    assert figures["statuses"] == {200: 60}, figures
    assert slow_for > 1.0
    print("latency", figures, f"30 messages under 200 ms latency took {slow_for:.1f} s")
