"""The cluster's PostgreSQL server restarted while messages flow: restarted at once, the
same workers reconnect to it by themselves; stopped for longer than a lease, the workers
go offline and every session is CONNECTED again once it is back. No QR scan, no double
connection, nothing lost.

What a worker receives while its store is unreachable whatsmeow acknowledges but cannot
decrypt, so the messages of this test reach the workers while the database is up, or
wait at the sandbox while the workers are offline (docs/cluster.md, "Faults")."""

from __future__ import annotations

import time

import pytest

from tests.e2e.clusterlib import (
    MessageLoad,
    leases,
    local,
    node,
    online,
    pair_all,
    replaced,
    wait_running,
    where,
)
from tests.e2e.conftest import new_phone
from tests.procs import Gateway, wait_until

pytestmark = pytest.mark.integration

#: A lease term of 10 s, renewed every 2: a quick restart must not outlast it on a
#: machine busy with other tests.
TTL = 10.0
TIMINGS = leases(TTL, 2, 3)


def _workers(nodes: dict[str, Gateway], sessions: list[str]) -> dict[str, int]:
    """Each running session's worker pid."""
    running = where(nodes, sessions)
    return {sid: local(nodes[name], sid)["worker"]["pid"] for sid, name in running.items()}


def test_postgresql_restarted_under_load(gateway_factory, sandbox, receiver, pg_server, tmp_path):
    url = pg_server.url
    nodes = {n: node(gateway_factory, tmp_path, sandbox, url, receiver, n, TIMINGS) for n in "ab"}
    sender = new_phone(sandbox, "15550007500", "sender")
    phones = {f"r{i}": new_phone(sandbox, f"1555000751{i}", f"r{i}") for i in range(6)}
    sessions = list(phones)
    pair_all({sid: (nodes["ab"[i % 2]], p) for i, (sid, p) in enumerate(phones.items())}, sandbox)

    load = MessageLoad(sandbox, sender, phones, interval=0.05).start()
    try:
        wait_until(lambda: len(load.sent) >= 30, 30, what="30 messages sent")
        load.pause()
        load.wait_delivered(nodes["a"], receiver, 30)
        workers = _workers(nodes, sessions)
        assert set(workers) == set(sessions)

        # Restarted at once: the nodes and workers find their connections dropped and
        # open new ones; the sessions stay where they are, with the same workers.
        pg_server.stop("fast")
        pg_server.start()
        load.resume()
        wait_until(lambda: len(load.sent) >= 60, 30, what="30 more sent")
        load.pause()
        load.wait_delivered(nodes["a"], receiver, 30)
        assert _workers(nodes, sessions) == workers
        before = len(load.sent)

        pg_server.stop("fast")
        stopped = time.monotonic()
        # Unable to renew, every node stops its workers before their leases can expire.
        wait_until(
            lambda: not any(online(sandbox, phone) for phone in phones.values()),
            TTL,
            interval=0.2,
            what="every worker offline",
        )
        offline_after = time.monotonic() - stopped
        load.resume()  # to offline devices: the sandbox keeps them
        wait_until(lambda: len(load.sent) >= before + 30, 30, what="30 more sent")
        pg_server.start()
        restarted = time.monotonic()
        wait_running(nodes, sessions, TTL + 20)
        back_after = time.monotonic() - restarted
        time.sleep(2)
    finally:
        sent = load.stop()
    assert len(sent) > before + 30
    load.wait_delivered(nodes["a"], receiver, 30)
    for session_id, phone in phones.items():  # the same accounts: no QR code was scanned
        session = nodes["a"].session(session_id)
        assert session["me"]["jid"] == f"{phone}@s.whatsapp.net"
    assert replaced(sandbox) == 0
    print(
        f"PostgreSQL stopped: every worker offline after {offline_after:.1f} s; started "
        f"again: every session back after {back_after:.1f} s; {len(sent)} messages, none lost"
    )
