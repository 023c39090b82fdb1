"""The cluster's PostgreSQL server stopped and started again while messages flow: a quick
restart with the workers connected and receiving at the moment of the stop, then a stop
longer than a lease. A worker whose database stops answering disconnects from WhatsApp
at once (messages wait at the sandbox, as at WhatsApp's servers) and comes back when the
database answers; no QR scan, no double connection, every message stored once and
webhooked (docs/cluster.md, "Faults")."""

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


def wait_replaced(
    nodes: dict[str, Gateway], sessions: list[str], old: dict[str, int], timeout: float
) -> None:
    """Until every session runs with a worker other than ``old``'s: a node's view of a
    session is as it last was while the database was away."""
    wait_until(
        lambda: (
            (new := _workers(nodes, sessions)).keys() == set(sessions)
            and all(new[sid] != old[sid] for sid in sessions)
        ),
        timeout,
        interval=0.5,
        what="every session running with a fresh worker",
    )


def test_postgresql_restarted_under_load(gateway_factory, sandbox, receiver, pg_server, tmp_path):
    url = pg_server.url
    nodes = {n: node(gateway_factory, tmp_path, sandbox, url, receiver, n, TIMINGS) for n in "ab"}
    sender = new_phone(sandbox, "15550007500", "sender")
    phones = {f"r{i}": new_phone(sandbox, f"1555000751{i}", f"r{i}") for i in range(6)}
    sessions = list(phones)
    pair_all({sid: (nodes["ab"[i % 2]], p) for i, (sid, p) in enumerate(phones.items())}, sandbox)
    assert set(where(nodes, sessions)) == set(sessions)

    load = MessageLoad(sandbox, sender, phones, interval=0.05).start()
    try:
        wait_until(lambda: len(load.sent) >= 30, 30, what="30 messages sent")
        workers = _workers(nodes, sessions)
        # Restarted while messages flow to connected workers: each worker disconnects
        # the moment its connection ends, and reconnects once the server answers.
        pg_server.stop("fast")
        stopped = time.monotonic()
        wait_until(
            lambda: not any(online(sandbox, phone) for phone in phones.values()),
            5,
            interval=0.1,
            what="every worker disconnected from the sandbox",
        )
        offline_after = time.monotonic() - stopped
        during = len(load.sent)
        wait_until(lambda: len(load.sent) >= during + 20, 30, what="20 sent while stopped")
        pg_server.start()
        started = time.monotonic()
        outage = started - stopped
        wait_replaced(nodes, sessions, workers, TTL + 40)
        quick_back_after = time.monotonic() - started
        before = len(load.sent)
        wait_until(lambda: len(load.sent) >= before + 30, 30, what="30 more sent")

        # Stopped past the leases: the sessions come back (wherever they are claimed)
        # once the server is started again. The stream pauses for the instant of the
        # stop: a message whose recording the stop cuts short is held by its worker,
        # which the lease's end then stops (docs/cluster.md, "Faults").
        load.pause()
        load.wait_delivered(nodes["a"], receiver, 30)
        workers = _workers(nodes, sessions)
        pg_server.stop("fast")
        wait_until(
            lambda: not any(online(sandbox, phone) for phone in phones.values()),
            5,
            interval=0.1,
            what="every worker disconnected again",
        )
        load.resume()
        before = len(load.sent)
        wait_until(lambda: len(load.sent) >= before + 30, 30, what="30 sent while stopped")
        time.sleep(max(0.0, TTL - 3))
        pg_server.start()
        restarted = time.monotonic()
        # Taken over by whichever node claims them first, on a machine busy with others.
        wait_replaced(nodes, sessions, workers, TTL + 40)
        back_after = time.monotonic() - restarted
        after = len(load.sent)
        wait_until(lambda: len(load.sent) >= after + 30, 30, what="30 more sent")
    finally:
        sent = load.stop()
    load.wait_delivered(nodes["a"], receiver, 60)
    for session_id, phone in phones.items():  # the same accounts: no QR code was scanned
        session = nodes["a"].session(session_id)
        assert session["me"]["jid"] == f"{phone}@s.whatsapp.net"
    assert replaced(sandbox) == 0
    print(
        f"PostgreSQL stopped: every worker off WhatsApp after {offline_after:.1f} s; "
        f"started again after {outage:.1f} s: every session back {quick_back_after:.1f} s later; "
        f"stopped past the leases and started again: every session back after "
        f"{back_after:.1f} s; {len(sent)} messages, none lost"
    )
