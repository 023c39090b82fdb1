"""Two gateway nodes on one PostgreSQL and the sandbox: a session runs on one node at a
time, and a killed node's sessions come back on the other without a QR code, without
two connections of one device at once and without losing a message."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends import ScratchDatabase
from tests.e2e.conftest import new_phone, pair
from tests.procs import Gateway, wait_until
from tests.sim.harness import SandboxProcess

pytestmark = pytest.mark.integration

TTL = 6.0
LEASES = {
    "GOWA_LEASE_TTL": str(TTL),
    "GOWA_LEASE_RENEW_INTERVAL": "1",
    "GOWA_LEASE_MARGIN": "2",
}


@pytest.fixture
def database() -> Iterator[ScratchDatabase]:
    database = ScratchDatabase()
    yield database
    database.drop()


def _node(gateway_factory, tmp_path: Path, sandbox, database, name: str) -> Gateway:
    env = {"GOWA_DATABASE_URL": database.url, "GOWA_NODE_ID": name, **LEASES}
    return gateway_factory(
        env=env, data_dir=tmp_path / name / "data", args=["--sandbox", sandbox.url]
    )


def _replaced(sandbox: SandboxProcess) -> int:
    status, body = sandbox.api("GET", "/sim/healthz")
    assert status == 200, body
    return body["replaced"]


def _running_here(gateway: Gateway, session_id: str) -> bool:
    session = gateway.session(session_id)
    return session["status"] == "CONNECTED" and session["worker"]["pid"] is not None


def _history(gateway: Gateway, session_id: str, chat: str) -> list[str]:
    status, body = gateway.http.get(f"/api/{session_id}/chat/{chat}@s.whatsapp.net/messages")
    assert status == 200, body
    return [item["content"] for item in body["results"]["data"]]


def test_a_killed_nodes_sessions_move_to_the_other_node(
    gateway_factory, sandbox, database, tmp_path
):
    a = _node(gateway_factory, tmp_path, sandbox, database, "a")
    b = _node(gateway_factory, tmp_path, sandbox, database, "b")
    phones = {sid: new_phone(sandbox, f"1555000071{i}", sid) for i, sid in enumerate("xyz")}
    pair(a, sandbox, "x", phones["x"])
    pair(a, sandbox, "y", phones["y"])
    pair(b, sandbox, "z", phones["z"])

    # One node runs each session; the other refuses to start it.
    assert b.session("x")["worker"]["pid"] is None
    status, body = b.http.post("/api/sessions/x/start")
    assert (status, body["code"]) == (409, "SESSION_ELSEWHERE"), body

    a.stop(signal.SIGKILL)
    killed = time.monotonic()
    # Sent while x has no node: the sandbox keeps it for x's next connection.
    status, body = b.http.post(
        "/api/z/send/message", {"phone": phones["x"], "message": "meanwhile"}
    )
    assert status == 200, body
    for session_id in ("x", "y"):
        wait_until(lambda s=session_id: _running_here(b, s), TTL + 10, what=f"{session_id} on b")
    took = time.monotonic() - killed
    assert took < TTL + 10
    for session_id in ("x", "y"):
        assert b.session(session_id)["me"]["jid"] == f"{phones[session_id]}@s.whatsapp.net"
    wait_until(
        lambda: "meanwhile" in _history(b, "x", phones["z"]),
        20,
        what="the message sent meanwhile in x's chat history",
    )
    assert _replaced(sandbox) == 0
    print(f"takeover of 2 sessions after SIGKILL: {took:.1f} s (lease TTL {TTL:g} s)")
