"""``max_pairing`` on every path into pairing: a real gateway, real workers, the sandbox.

A session without an account pairs as soon as its worker runs, whichever route started
it: create with ``start``, ``/start``, ``/restart``, GoWA's reconnects and login, the
implicit ``default`` session, many at once. None may take the gateway past the cap, and a
session that has an account is never held back by it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import new_phone, pair
from tests.procs import Gateway, wait_until

pytestmark = pytest.mark.integration

LIMIT = 2


@pytest.fixture
def gateway(sandbox, tmp_path):
    gateway = Gateway(
        tmp_path / "data",
        env={"GOWA_MAX_PAIRING": str(LIMIT), "GOWA_LOG_LEVEL": "WARNING"},
        args=["--sandbox", sandbox.url],
    )
    gateway.start()
    yield gateway
    gateway.cleanup()


def _pairing(gateway: Gateway) -> list[str]:
    status, body = gateway.http.get("/api/sessions")
    assert status == 200, body
    return [s["id"] for s in body["results"] if s["me"] is None and s["worker"]["pid"] is not None]


def _refused(answer: tuple[int, object]) -> bool:
    status, body = answer
    return (
        status == 429
        and isinstance(body, dict)
        and body["code"] == "TOO_MANY_PAIRING"
        and "max_pairing 2" in body["message"]
    )


def test_max_pairing_holds_on_every_path_into_pairing(gateway, sandbox):
    http = gateway.http
    # A session with an account, stopped: the cap must never hold it back.
    pair(gateway, sandbox, "paired", new_phone(sandbox, "15550007001", "Paired"))
    assert http.post("/api/sessions/paired/stop")[0] == 200

    # Eight stopped sessions started at once: exactly LIMIT get through.
    ids = [f"q{n}" for n in range(8)]
    for session_id in ids:
        status, body = http.post("/api/sessions", {"session_id": session_id, "start": False})
        assert status == 201, body
    with ThreadPoolExecutor(len(ids)) as pool:
        answers = list(pool.map(lambda i: http.post(f"/api/sessions/{i}/start"), ids))
    started = [i for i, answer in zip(ids, answers, strict=True) if answer[0] == 200]
    assert len(started) == LIMIT, answers
    assert all(_refused(a) for a in answers if a[0] != 200), answers
    for session_id in started:
        gateway.wait_status(session_id, {"SCAN_QR_CODE"}, timeout=30)
    waiting = next(i for i in ids if i not in started)

    # Every other route into pairing is refused too, and changes nothing.
    attempts = {
        "create+start": http.post("/api/sessions", {"session_id": "new", "start": True}),
        "start": http.post(f"/api/sessions/{waiting}/start"),
        "restart": http.post(f"/api/sessions/{waiting}/restart"),
        "devices reconnect": http.post(f"/devices/{waiting}/reconnect"),
        "app reconnect": http.get(f"/api/{waiting}/app/reconnect"),
        "app login": http.get(f"/api/{waiting}/app/login"),
        "device login": http.get(f"/devices/{waiting}/login"),
        "implicit default": http.get("/app/status"),
    }
    wrong = {route: answer for route, answer in attempts.items() if not _refused(answer)}
    assert not wrong, wrong
    assert http.get("/api/sessions/new")[0] == 404
    assert http.get("/api/sessions/default")[0] == 404
    assert sorted(_pairing(gateway)) == sorted(started)

    # A session with an account starts whatever the cap, and connects.
    status, body = http.post("/api/sessions/paired/start")
    assert status == 200, body
    gateway.wait_status("paired", {"CONNECTED"}, timeout=30)

    # A session already pairing may be restarted (it takes no new place).
    status, body = http.post(f"/api/sessions/{started[0]}/restart")
    assert status == 200, body
    # A place freed by a stop is taken by the next start.
    assert http.post(f"/api/sessions/{started[1]}/stop")[0] == 200
    status, body = http.post(f"/api/sessions/{waiting}/start")
    assert status == 200, body
    wait_until(
        lambda: sorted(_pairing(gateway)) == sorted([started[0], waiting]),
        30,
        what="the freed place to be taken",
    )
