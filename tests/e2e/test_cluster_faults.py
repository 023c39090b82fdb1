"""Three nodes with 30 sessions under a stream of sandbox messages: one node killed, then
another drained. Every session must come back CONNECTED without a QR scan, the sandbox
must count no device connected twice, and every message sent must be in its session's
chat storage exactly once and reach the webhook receiver at least once.

The test's own PostgreSQL server (``pg_server``): 30 sessions hold some 90 connections,
more than the shared server has to spare beside the other tests."""

from __future__ import annotations

import signal
import time

import pytest

from tests.e2e.clusterlib import (
    MessageLoad,
    leases,
    local,
    node,
    pair_all,
    replaced,
    wait_running,
    where,
)
from tests.e2e.conftest import new_phone

pytestmark = pytest.mark.integration

#: A lease term of 10 s, renewed every 2: 30 sessions, 3 nodes and the sandbox share the
#: test machine's cores with other tests, and a node taking 10 sessions over is busy.
TTL = 10.0
TIMINGS = leases(TTL, 2, 3)


def test_three_nodes_lose_one_then_drain_another_under_load(
    gateway_factory, sandbox, pg_server, receiver, tmp_path
):
    url = pg_server.url
    nodes = {n: node(gateway_factory, tmp_path, sandbox, url, receiver, n, TIMINGS) for n in "abc"}
    sender = new_phone(sandbox, "15550007300", "sender")
    phones = {f"t{i:02d}": new_phone(sandbox, f"155500074{i:02d}", f"t{i:02d}") for i in range(30)}
    sessions = list(phones)
    # Ten on each node, each asked as if forwarded to it.
    placed = {sid: (nodes["abc"[i % 3]], phone) for i, (sid, phone) in enumerate(phones.items())}
    pair_all(placed, sandbox)
    assert where(nodes, sessions) == {sid: "abc"[i % 3] for i, sid in enumerate(sessions)}
    on_a = sessions[0::3]

    load = MessageLoad(sandbox, sender, phones, interval=0.05).start()
    try:
        time.sleep(2)
        # Killed: a's workers die with it and its leases expire; b and c take its
        # sessions over while the messages to them wait at the sandbox.
        nodes["a"].stop(signal.SIGKILL)
        killed = time.monotonic()
        del nodes["a"]
        wait_running(nodes, on_a, TTL + 10)  # a's sessions, on b and c
        taken_after = time.monotonic() - killed
        running = where(nodes, sessions)
        assert set(running) == set(sessions) and set(running.values()) == {"b", "c"}, running
        for session_id in on_a:  # the same accounts: no QR code was scanned
            session = local(nodes[running[session_id]], session_id)
            assert session["me"]["jid"] == f"{phones[session_id]}@s.whatsapp.net"
        time.sleep(2)

        # Drained through c (for an upgrade): b hands every session it runs to c.
        status, body = nodes["c"].http.post("/api/cluster/nodes/b/drain")
        assert status == 200, body
        draining = time.monotonic()
        wait_running({"c": nodes["c"]}, sessions, 60)
        drained_after = time.monotonic() - draining
        time.sleep(2)
    finally:
        sent = load.stop()
    assert len(sent) > 200
    # Asked of the drained node: it forwards each session's request to c.
    load.wait_delivered(nodes["b"], receiver, 60)
    assert all(local(nodes["b"], sid)["worker"]["pid"] is None for sid in sessions)
    assert replaced(sandbox) == 0
    print(
        f"lease TTL {TTL:g} s: killed node's 10 sessions back after {taken_after:.1f} s; "
        f"20 sessions drained in {drained_after:.1f} s; {len(sent)} messages, none lost"
    )
