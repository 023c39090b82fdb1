"""Session leases on a real PostgreSQL: one holder at a time, taken over once expired, the
epoch growing at each change of hands, gone with the session."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from gowa_py.cluster.leases import LeaseStore
from gowa_py.models import SessionConfig
from gowa_py.protocol import Me, SessionState
from gowa_py.registry import LeaseLost, WriteFence
from gowa_py.storage.factory import PostgresStorage
from gowa_py.storage.interfaces import RegistryStorage
from tests.backends import ScratchDatabase

TTL = 0.5


@pytest.fixture
def registry(test_database: ScratchDatabase) -> Iterator[RegistryStorage]:
    test_database.empty()  # what other tests of the run left (sessions, nodes)
    storage = PostgresStorage(test_database.url)
    yield storage.registry
    storage.close()
    test_database.empty()


@pytest.fixture
def nodes(test_database: ScratchDatabase, registry: RegistryStorage) -> Iterator[list[LeaseStore]]:
    stores = [LeaseStore(test_database.url, name, TTL, 5.0) for name in ("a", "b")]
    for store in stores:
        store.register(f"http://{store.node_id}.test:3000", 0)
    yield stores
    for store in stores:
        store.close()


def test_one_holder_until_it_expires_then_the_next_with_a_higher_epoch(registry, nodes):
    a, b = nodes
    registry.create("s", SessionConfig(), "running")
    assert a.claim("s") == 1
    assert b.claim("s") is None
    assert a.claim("s") == 1  # its holder may claim it again: no change of hands
    owner = b.owner("s")
    assert owner is not None and (owner.node, owner.url, owner.epoch, owner.live) == (
        "a",
        "http://a.test:3000",
        1,
        True,
    )
    assert a.renew({"s": 1}) == {"s"}
    assert b.orphans(10, []) == []

    time.sleep(TTL + 0.1)  # a stopped renewing
    assert b.orphans(10, []) == ["s"]
    assert b.claim("s") == 2
    assert a.renew({"s": 1}) == set()  # a learns it lost the session
    assert a.claim("s") is None
    assert [(n.id, n.sessions) for n in a.nodes() if n.id in ("a", "b")] == [("a", 0), ("b", 1)]

    b.release("s", 2)  # stopped on b: anyone may start it at once
    assert a.claim("s") == 3
    a.release("s", 2)  # a stale epoch releases nothing
    assert b.claim("s") is None

    route = a.owners()["s"]
    assert (route.node, route.url, route.heartbeat_age < 5) == ("a", "http://a.test:3000", True)
    registry.delete("s")
    assert a.owners() == {}


def test_only_sessions_meant_to_run_are_swept_and_a_restarted_node_gets_its_own_back(
    registry, nodes
):
    a, b = nodes
    for session_id, desired in (("run", "running"), ("idle", "stopped"), ("mine", "running")):
        registry.create(session_id, SessionConfig(), desired)
    assert a.claim("mine") == 1
    assert b.orphans(10, []) == ["run"]
    # a, restarted, does not hold "mine" any more but its lease is still live: a sweeps
    # it back at once (same epoch), b leaves it alone.
    assert a.orphans(10, []) == ["run", "mine"]
    assert a.orphans(10, ["mine"]) == ["run"]
    assert a.orphans(1, []) == ["run"]
    assert (b.drain("a"), b.drain("nobody")) == (True, False)
    assert (a.beat(), b.beat()) == ("draining", "up")  # a stays draining until it leaves
    a.leave()
    assert sorted(b.orphans(10, [])) == ["mine", "run"]
    assert [(n.id, n.status) for n in b.nodes() if n.id in ("a", "b")] == [
        ("a", "down"),
        ("b", "up"),
    ]


def test_a_node_registers_its_memory_budget_and_beats_its_memory_per_worker(registry, nodes):
    """What placement weighs of another node: its budget (registered as it starts) and the
    mean PSS of its workers (with every heartbeat); a node's restart forgets the latter."""
    a, b = nodes
    mb = 1024 * 1024
    a.register("http://a.test:3000", 50, 400 * mb)
    assert a.beat(90 * mb, 9 * mb) == "up"
    rows = {n.id: n for n in b.nodes()}
    assert (rows["a"].capacity, rows["a"].memory_budget) == (50, 400 * mb)
    assert (rows["a"].memory, rows["a"].worker_memory) == (90 * mb, 9 * mb)
    assert (rows["b"].memory_budget, rows["b"].worker_memory) == (0, 0)  # no limit
    a.register("http://a.test:3000", 50, 100 * mb)
    rows = {n.id: n for n in b.nodes()}
    assert (rows["a"].memory_budget, rows["a"].worker_memory) == (100 * mb, 0)


def test_a_node_that_lost_a_lease_cannot_overwrite_what_its_new_holder_wrote(
    test_database, registry, nodes
):
    """What a worker says about its session (status, account, event cursor, activity) is
    written by its node only under the lease it claimed: after a freeze, the node that
    lost the session is refused and told so, whatever its stale events say."""
    a, b = nodes
    other = PostgresStorage(test_database.url)  # node b's registry, in its own process
    held: dict[str, dict[str, int]] = {"a": {}, "b": {}}
    lost: list[tuple[str, str]] = []
    for node, reg in (("a", registry), ("b", other.registry)):
        reg.fence = WriteFence(
            node, held[node].get, lambda sid, node=node: lost.append((node, sid))
        )
    try:
        registry.create("s", SessionConfig(), "running")
        # Written by nobody's worker yet: anyone may (a new session's first status).
        registry.set_status("s", SessionState.STOPPED)
        held["a"]["s"] = a.claim("s") or 0
        registry.set_status("s", SessionState.CONNECTED)
        registry.set_me("s", Me(jid="1555@s.whatsapp.net"))
        registry.set_event_seq("s", 5, 100.0)

        time.sleep(TTL + 0.1)  # a is frozen: its lease expires and b takes it over
        held["b"]["s"] = b.claim("s") or 0
        assert held["b"]["s"] == 2
        other.registry.reload("s")
        other.registry.set_status("s", SessionState.CONNECTED)
        other.registry.set_event_seq("s", 7, 200.0)

        # a thaws, its worker's last events still to apply: every write is refused.
        stale = [
            lambda: registry.set_status("s", SessionState.DISCONNECTED, "gone"),
            lambda: registry.set_me("s", None),
            lambda: registry.set_event_seq("s", 6, 150.0),
            lambda: registry.set_event_log("s", "another-log", 0),
            lambda: registry.set_desired("s", "stopped", fenced=True),
        ]
        for write in stale:
            with pytest.raises(LeaseLost):
                write()
        assert lost == [("a", "s")] * len(stale)
        # Even once a no longer counts the lease as its own, b's live lease refuses it.
        del held["a"]["s"]
        with pytest.raises(LeaseLost):
            registry.set_status("s", SessionState.STOPPED)
        with psycopg.connect(test_database.url) as conn:
            row = conn.execute(
                "SELECT status, me::json ->> 'jid', last_event_seq, last_activity, "
                "event_epoch, desired FROM gowa.sessions WHERE id = 's'"
            ).fetchone()
            transitions = conn.execute(
                "SELECT status FROM gowa.transitions WHERE session_id = 's' ORDER BY id"
            ).fetchall()
        assert row == (
            "CONNECTED",
            "1555@s.whatsapp.net",
            7,
            200.0,
            None,
            "running",
        )
        assert [t[0] for t in transitions] == ["STOPPED", "STOPPED", "CONNECTED", "CONNECTED"]
        # b, the holder, writes on; and once b gave the lease up, a may write again.
        other.registry.set_status("s", SessionState.STOPPED)
        b.release("s", 2)
        registry.set_status("s", SessionState.STARTING)
        assert registry.get("s").status is SessionState.STARTING
    finally:
        other.close()


def test_a_connection_attempt_nobody_answers_gives_up_within_the_timeout():
    """A server that accepts TCP connections and never answers (a node cut off from
    PostgreSQL behind a live address, a frozen server): the attempt fails after the lease
    connection's timeout (2 s, libpq's floor), even though the URL asks for 10 minutes."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshakes; no one reads or answers
        port = silent.getsockname()[1]
        url = f"postgresql://postgres@127.0.0.1:{port}/gowa?connect_timeout=600"
        outcome: list[BaseException | float] = []

        def attempt() -> None:
            started = time.monotonic()
            try:
                LeaseStore(url, "a", TTL, 1.0)
            except psycopg.OperationalError:
                outcome.append(time.monotonic() - started)
            except BaseException as exc:  # reported below, not lost in the thread
                outcome.append(exc)

        thread = threading.Thread(target=attempt, daemon=True)
        thread.start()
        thread.join(30)
    assert outcome, "the attempt was still waiting after 30 s"
    elapsed = outcome[0]
    assert isinstance(elapsed, float), elapsed
    assert 1.5 <= elapsed < 10, elapsed
