"""Credential guessing against a real ``gowa serve``: wrong keys must not stall the gateway
(PBKDF2 ``api_key_hash`` checked off the event loop, bounded), and one address gets only
``auth_max_failures`` guesses."""

from __future__ import annotations

import secrets
import threading
import time

import pytest

from gowa_py.keyhash import hash_key
from tests.procs import Http

pytestmark = pytest.mark.integration

CLIENTS = 16
FLOOD_S = 4.0


def _flood(http: Http, stop: threading.Event, statuses: list[int]) -> None:
    while not stop.is_set():
        status, _ = http.get("/api/sessions", headers={"X-Api-Key": secrets.token_hex(8)})
        statuses.append(status)


def test_wrong_keys_against_a_pbkdf2_hash_do_not_stall_the_gateway(gateway_factory):
    # The plain key only lets the harness see readiness; every guess meets the PBKDF2 hash
    # (the per-address throttle, off here, would otherwise stop the guesses before it).
    gateway = gateway_factory(
        {
            "GOWA_AUTH_MAX_FAILURES": "0",
            "GOWA_API_KEY": "harness-key",
            "GOWA_API_KEY_HASH": hash_key("the-right-key", slow=True),
            "GOWA_HOST": "127.0.0.1",
        }
    )
    http = gateway.http
    stop = threading.Event()
    statuses: list[int] = []
    flooders = [
        threading.Thread(target=_flood, args=(http, stop, statuses)) for _ in range(CLIENTS)
    ]
    for thread in flooders:
        thread.start()
    latencies = []
    try:
        time.sleep(0.5)
        deadline = time.monotonic() + FLOOD_S
        while time.monotonic() < deadline:
            began = time.monotonic()
            status, _ = http.get("/healthz", timeout=10)
            latencies.append(time.monotonic() - began)
            assert status == 200
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in flooders:
            thread.join(30)
    # Every wrong key is refused: 401 once checked, 429 while the checkers are all busy.
    assert statuses and set(statuses) <= {401, 429}, set(statuses)
    assert 401 in statuses
    assert max(latencies) < 0.5, f"/healthz took up to {max(latencies):.2f} s"
    # The right key still gets in, and once checked it is remembered (no second PBKDF2).
    assert http.get("/api/sessions", headers={"X-Api-Key": "the-right-key"})[0] == 200
    began = time.monotonic()
    for _ in range(5):
        assert http.get("/api/sessions", headers={"X-Api-Key": "the-right-key"})[0] == 200
    assert time.monotonic() - began < 0.5


def test_a_guessing_address_is_stopped_after_its_budget(gateway_factory):
    gateway = gateway_factory({"GOWA_API_KEY": "the-right-key", "GOWA_HOST": "127.0.0.1"})
    http = gateway.http
    statuses = [
        http.post(
            "/send/message",
            {"phone": "1", "message": "x"},
            headers={"X-Api-Key": secrets.token_hex(8)},
        )[0]
        for _ in range(200)
    ]
    assert statuses[:10] == [401] * 10
    assert set(statuses[10:]) == {429}
    # Even the right key now waits: a correct guess must not be told apart.
    status, body = http.get("/api/sessions")
    assert (status, body["code"]) == (429, "TOO_MANY_REQUESTS")
