"""Two gateway nodes on one PostgreSQL and the sandbox: a session runs on one node at a
time; a frozen node's workers disconnect by themselves before their leases can be taken,
and a killed node's sessions come back on the other node, without a QR code, without two
connections of one device at once (the sandbox counts them) and without losing a message."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends import ScratchDatabase
from tests.e2e.conftest import new_phone, pair
from tests.procs import GOWA, ROOT, Gateway, Http, wait_until
from tests.receiver import WebhookReceiver
from tests.sim.harness import SandboxProcess

pytestmark = pytest.mark.integration

TTL = 6.0
MARGIN = 2.0
LEASES = {
    "GOWA_LEASE_TTL": str(TTL),
    "GOWA_LEASE_RENEW_INTERVAL": "1",
    "GOWA_LEASE_MARGIN": str(MARGIN),
}


@pytest.fixture
def database() -> Iterator[ScratchDatabase]:
    database = ScratchDatabase()
    yield database
    database.drop()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver("s3cret").start()
    yield receiver
    receiver.stop()


def _node(
    gateway_factory, tmp_path: Path, sandbox, database, receiver: WebhookReceiver, name: str
) -> Gateway:
    env = {
        "GOWA_DATABASE_URL": database.url,
        "GOWA_NODE_ID": name,
        "GOWA_WEBHOOK_URL": receiver.url,
        "GOWA_WEBHOOK_SECRET": "s3cret",
        "GOWA_WEBHOOK_EVENTS": "message",
        "GOWA_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
        **LEASES,
    }
    return gateway_factory(
        env=env, data_dir=tmp_path / name / "data", args=["--sandbox", sandbox.url]
    )


def _replaced(sandbox: SandboxProcess) -> int:
    status, body = sandbox.api("GET", "/sim/healthz")
    assert status == 200, body
    return body["replaced"]


def _online(sandbox: SandboxProcess, phone: str) -> bool:
    status, body = sandbox.api("GET", f"/sim/phones/{phone}")
    assert status == 200, body
    return any(device["connected"] for device in body["devices"] if device["device"])


#: Marks a request as forwarded already: the node answers it itself.
LOCAL = {"X-Gowa-Forwarded-By": "test"}


def _local(gateway: Gateway, session_id: str) -> dict:
    """The session as this node itself sees it (its worker, if it runs the session)."""
    status, body = gateway.http.call("GET", f"/api/sessions/{session_id}", headers=LOCAL)
    assert status == 200, body
    return body["results"]


def _pinned(gateway: Gateway) -> Gateway:
    """The gateway, every request to it marked as forwarded: it serves them itself."""
    view = copy.copy(gateway)
    view.http = Http(gateway.http.base, LOCAL)
    return view


def _worker(gateway: Gateway, session_id: str) -> int | None:
    return _local(gateway, session_id)["worker"]["pid"]


def _running_here(gateway: Gateway, session_id: str) -> bool:
    session = _local(gateway, session_id)
    return session["status"] == "CONNECTED" and session["worker"]["pid"] is not None


def _webhooks(receiver: WebhookReceiver, session_id: str, text: str) -> int:
    """How many times the receiver got the message event of ``text`` for the session."""
    return sum(
        1
        for item in receiver.items("message")
        if item.body["session_id"] == session_id and text in json.dumps(item.body["payload"])
    )


def _history(gateway: Gateway, session_id: str, chat: str) -> list[str]:
    status, body = gateway.http.get(f"/api/{session_id}/chat/{chat}@s.whatsapp.net/messages")
    assert status == 200, body
    return [item["content"] for item in body["results"]["data"]]


def test_sessions_leave_a_frozen_node_and_a_killed_one_without_double_connections(
    gateway_factory, sandbox, database, receiver, tmp_path
):
    a = _node(gateway_factory, tmp_path, sandbox, database, receiver, "a")
    b = _node(gateway_factory, tmp_path, sandbox, database, receiver, "b")
    phones = {sid: new_phone(sandbox, f"1555000072{i}", sid) for i, sid in enumerate("xyzw")}
    # Placed by hand (each node asked as if forwarded to it): x and y on a, z on b.
    pair(_pinned(a), sandbox, "x", phones["x"])
    pair(_pinned(a), sandbox, "y", phones["y"])
    pair(_pinned(b), sandbox, "z", phones["z"])

    # One node runs each session, every node knows which and sends its requests there.
    wait_until(lambda: _local(b, "x")["node"] == "a", 5, what="b names x's node")
    assert _local(a, "z")["node"] == "b"
    assert b.session("x")["worker"]["pid"] == _worker(a, "x")  # a's answer, through b
    status, body = b.http.post("/api/x/send/message", {"phone": phones["z"], "message": "via b"})
    assert status == 200, body
    wait_until(lambda: "via b" in _history(b, "z", phones["x"]), 20, what="x's message via b")
    wait_until(lambda: _webhooks(receiver, "z", "via b"), 20, what="z's webhook of it")
    status, body = b.http.get("/api/cluster/nodes")
    assert status == 200, body
    assert {(n["id"], n["status"], n["sessions"]) for n in body["results"]} == {
        ("a", "up", 2),
        ("b", "up", 1),
    }
    # Asked itself, b refuses to run x too.
    wait_until(
        lambda: {n["id"]: n["memory"] for n in b.http.get("/api/cluster/nodes")[1]["results"]}.get(
            "a"
        ),
        15,
        what="a's workers' memory, as b sees it",
    )
    # A new session goes to the node with the most room: b, with 1 session to a's 2.
    status, body = a.http.post("/api/sessions", {"session_id": "p"})
    assert (status, body["results"]["node"]) == (201, "b"), body
    wait_until(lambda: _worker(b, "p"), 10, what="p's worker on b")
    assert b.http.call("DELETE", "/api/sessions/p")[0] == 200

    assert _worker(b, "x") is None
    status, body = b.http.call("POST", "/api/sessions/x/start", headers=LOCAL)
    assert (status, body["code"]) == (409, "SESSION_ELSEWHERE"), body

    # Frozen: a cannot renew or kill anything, so its workers disconnect by themselves,
    # before the leases (renewed at most TTL ago) can expire; then b takes them over.
    os.kill(a.pid, signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        wait_until(lambda: not _online(sandbox, phones["x"]), TTL, what="x's worker on a gone")
        offline_after = time.monotonic() - frozen
        # b does not send x's requests to the silent a to hang there.
        status, body = b.http.get("/api/sessions/x", timeout=5)
        assert status in (200, 503), body
        for session_id in ("x", "y"):
            wait_until(
                lambda s=session_id: _running_here(b, s), TTL + 10, what=f"{session_id} on b"
            )
        moved_after = time.monotonic() - frozen
    finally:
        os.kill(a.pid, signal.SIGCONT)
    # a, thawed, learns it lost them and starts nothing; b keeps them.
    b_pid = _worker(b, "x")
    time.sleep(2 * MARGIN)
    assert _worker(a, "x") is None and _worker(a, "y") is None
    assert _worker(b, "x") == b_pid
    assert a.session("x")["node"] == "b"
    assert _replaced(sandbox) == 0

    # Killed: b's workers die with it, its leases expire, a takes x, y and z over.
    b.stop(signal.SIGKILL)
    killed = time.monotonic()
    # Sent while z has no node: the sandbox keeps it for z's next connection.
    status, body = sandbox.api(
        "POST", f"/sim/phones/{phones['w']}/send", {"to": phones["z"], "text": "meanwhile"}
    )
    assert status == 200, body
    for session_id in ("x", "y", "z"):
        wait_until(
            lambda s=session_id: _running_here(a, s), TTL + 10, what=f"{session_id} back on a"
        )
    taken_after = time.monotonic() - killed
    for session_id in ("x", "y", "z"):  # the same accounts: no QR code was scanned
        assert a.session(session_id)["me"]["jid"] == f"{phones[session_id]}@s.whatsapp.net"
    wait_until(
        lambda: "meanwhile" in _history(a, "z", phones["w"]),
        20,
        what="the message sent meanwhile in z's chat history",
    )
    wait_until(lambda: _webhooks(receiver, "z", "meanwhile"), 20, what="its webhook, from a")
    time.sleep(1)  # time enough for a second delivery, were there one
    assert _webhooks(receiver, "z", "via b") == 1 and _webhooks(receiver, "z", "meanwhile") == 1

    # Drained (for an upgrade), through the other node and the CLI: a hands all three
    # sessions to b, which is back; nothing sent meanwhile is lost.
    b.start()
    drained = subprocess.run(
        [*GOWA, "node", "--url", b.http.base, "drain", "a"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert drained.returncode == 0 and json.loads(drained.stdout)["status"] == "draining"
    draining = time.monotonic()
    status, body = sandbox.api(
        "POST", f"/sim/phones/{phones['w']}/send", {"to": phones["x"], "text": "drained"}
    )
    assert status == 200, body
    for session_id in ("x", "y", "z"):
        wait_until(lambda s=session_id: _running_here(b, s), 30, what=f"{session_id} on b")
    drained_after = time.monotonic() - draining
    assert all(_worker(a, s) is None for s in ("x", "y", "z"))
    wait_until(lambda: "drained" in _history(b, "x", phones["w"]), 20, what="x's message")
    status, body = a.http.get("/api/cluster/nodes")
    assert {(n["id"], n["status"], n["sessions"]) for n in body["results"]} == {
        ("a", "draining", 0),
        ("b", "up", 3),
    }
    assert _replaced(sandbox) == 0
    assert _replaced(sandbox) == 0
    print(
        f"lease TTL {TTL:g} s: frozen node's worker offline after {offline_after:.1f} s, "
        f"sessions on the other node after {moved_after:.1f} s; killed node's 3 sessions "
        f"back after {taken_after:.1f} s; drained in {drained_after:.1f} s"
    )
