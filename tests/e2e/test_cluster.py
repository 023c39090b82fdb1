"""Two gateway nodes on one PostgreSQL and the sandbox: a session runs on one node at a
time; a frozen node's workers disconnect by themselves before their leases can be taken,
and a killed node's sessions come back on the other node, without a QR code, without two
connections of one device at once (the sandbox counts them) and without losing a message."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.e2e.clusterlib import (
    LOCAL,
    MARGIN,
    TTL,
    history,
    local,
    node,
    online,
    pinned,
    replaced,
    running_here,
    webhooks,
    worker,
)
from tests.e2e.conftest import new_phone, pair
from tests.procs import GOWA, ROOT, wait_until

pytestmark = pytest.mark.integration


def test_sessions_leave_a_frozen_node_and_a_killed_one_without_double_connections(
    gateway_factory, sandbox, database, receiver, tmp_path
):
    a = node(gateway_factory, tmp_path, sandbox, database.url, receiver, "a")
    b = node(gateway_factory, tmp_path, sandbox, database.url, receiver, "b")
    phones = {sid: new_phone(sandbox, f"1555000072{i}", sid) for i, sid in enumerate("xyzw")}
    # Placed by hand (each node asked as if forwarded to it): x and y on a, z on b.
    pair(pinned(a), sandbox, "x", phones["x"])
    pair(pinned(a), sandbox, "y", phones["y"])
    pair(pinned(b), sandbox, "z", phones["z"])

    # One node runs each session, every node knows which and sends its requests there.
    wait_until(lambda: local(b, "x")["node"] == "a", 5, what="b names x's node")
    assert local(a, "z")["node"] == "b"
    assert b.session("x")["worker"]["pid"] == worker(a, "x")  # a's answer, through b
    status, body = b.http.post("/api/x/send/message", {"phone": phones["z"], "message": "via b"})
    assert status == 200, body
    wait_until(lambda: "via b" in history(b, "z", phones["x"]), 20, what="x's message via b")
    wait_until(lambda: webhooks(receiver, "z", "via b"), 20, what="z's webhook of it")
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
    wait_until(lambda: worker(b, "p"), 10, what="p's worker on b")
    assert b.http.call("DELETE", "/api/sessions/p")[0] == 200

    assert worker(b, "x") is None
    status, body = b.http.call("POST", "/api/sessions/x/start", headers=LOCAL)
    assert (status, body["code"]) == (409, "SESSION_ELSEWHERE"), body

    # Frozen: a cannot renew or kill anything, so its workers disconnect by themselves,
    # before the leases (renewed at most TTL ago) can expire; then b takes them over.
    os.kill(a.pid, signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        wait_until(lambda: not online(sandbox, phones["x"]), TTL, what="x's worker on a gone")
        offline_after = time.monotonic() - frozen
        # b does not send x's requests to the silent a to hang there.
        status, body = b.http.get("/api/sessions/x", timeout=5)
        assert status in (200, 503), body
        for session_id in ("x", "y"):
            wait_until(lambda s=session_id: running_here(b, s), TTL + 10, what=f"{session_id} on b")
        moved_after = time.monotonic() - frozen
    finally:
        os.kill(a.pid, signal.SIGCONT)
    # a, thawed, learns it lost them and starts nothing; b keeps them.
    b_pid = worker(b, "x")
    time.sleep(2 * MARGIN)
    assert worker(a, "x") is None and worker(a, "y") is None
    assert worker(b, "x") == b_pid
    assert a.session("x")["node"] == "b"
    assert replaced(sandbox) == 0

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
            lambda s=session_id: running_here(a, s), TTL + 10, what=f"{session_id} back on a"
        )
    taken_after = time.monotonic() - killed
    for session_id in ("x", "y", "z"):  # the same accounts: no QR code was scanned
        assert a.session(session_id)["me"]["jid"] == f"{phones[session_id]}@s.whatsapp.net"
    wait_until(
        lambda: "meanwhile" in history(a, "z", phones["w"]),
        20,
        what="the message sent meanwhile in z's chat history",
    )
    wait_until(lambda: webhooks(receiver, "z", "meanwhile"), 20, what="its webhook, from a")
    time.sleep(1)  # time enough for a second delivery, were there one
    assert webhooks(receiver, "z", "via b") == 1 and webhooks(receiver, "z", "meanwhile") == 1

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
        wait_until(lambda s=session_id: running_here(b, s), 30, what=f"{session_id} on b")
    drained_after = time.monotonic() - draining
    assert all(worker(a, s) is None for s in ("x", "y", "z"))
    wait_until(lambda: "drained" in history(b, "x", phones["w"]), 20, what="x's message")
    status, body = a.http.get("/api/cluster/nodes")
    assert {(n["id"], n["status"], n["sessions"]) for n in body["results"]} == {
        ("a", "draining", 0),
        ("b", "up", 3),
    }
    assert replaced(sandbox) == 0
    assert replaced(sandbox) == 0
    print(
        f"lease TTL {TTL:g} s: frozen node's worker offline after {offline_after:.1f} s, "
        f"sessions on the other node after {moved_after:.1f} s; killed node's 3 sessions "
        f"back after {taken_after:.1f} s; drained in {drained_after:.1f} s"
    )
