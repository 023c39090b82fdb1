"""The relay of session events between cluster nodes, on a real PostgreSQL: each event
reaches the other nodes once, never its own; one too large for a NOTIFY goes through the
table; a listener whose backend is terminated listens again."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

import msgspec
import psycopg
import pytest

from gowa_py import protocol as p
from gowa_py.cluster import relay as r
from gowa_py.cluster.relay import EventRelay, RemoteEvent
from gowa_py.eventbody import EventBody
from gowa_py.gateway.eventstream import EventHub
from gowa_py.models import SessionConfig
from gowa_py.registry import ApiKeyRecord
from gowa_py.storage import postgres
from gowa_py.storage.factory import PostgresStorage
from tests.backends import ScratchDatabase


def _body(event_id: str, session_id: str = "s1", text: str = "hi") -> EventBody:
    event = p.Event(
        id=event_id,
        session_id=session_id,
        name="message",
        timestamp=1_700_000_000.5,
        payload={"body": text},
    )
    return EventBody(event, None)


def test_the_stamp_adds_the_node_to_the_encoded_event():
    body = _body("e1", text='quote " and é')
    stamped = body.stamped("gw-1")
    assert json.loads(stamped) == {**body.json, "node": "gw-1"}
    assert body.stamped("gw-1") is stamped  # kept, not spliced again
    assert json.loads(body.encoded) == body.json  # the webhooks' JSON has no node


def test_small_events_go_inline_and_large_ones_by_reference():
    small = _body("e1").stamped("a")
    assert r.fits(small)
    node, ref, event = r.read(small)
    assert (node, ref) == ("a", 0) and event is not None
    assert (event.id, event.node, event.session_id, event.name) == ("e1", "a", "s1", "message")
    assert event.data == small

    large = _body("e2", text="x" * r.NOTIFY_LIMIT).stamped("a")
    assert not r.fits(large)
    # Multi-byte characters count as bytes, as PostgreSQL counts them.
    assert not r.fits(_body("e3", text="é" * (r.NOTIFY_LIMIT // 2)).stamped("a"))
    assert r.read(r.reference("a") + b"42}") == ("a", 42, None)


@pytest.fixture
def database(test_database: ScratchDatabase) -> Iterator[str]:
    test_database.empty()
    PostgresStorage(test_database.url).close()  # the registry's tables, event_relay among them
    yield test_database.url
    test_database.empty()


class Node:
    def __init__(self, url: str, name: str) -> None:
        self.received: list[RemoteEvent] = []
        self.gaps: list[tuple[float, float]] = []
        self.relay = EventRelay(url, name, self._deliver, self._gap)

    async def _deliver(self, event: RemoteEvent) -> None:
        self.received.append(event)

    async def _gap(self, since: float, until: float) -> None:
        self.gaps.append((since, until))

    def ids(self) -> list[str]:
        return [event.id for event in self.received]


async def _until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture
async def nodes(database: str) -> AsyncIterator[tuple[Node, Node]]:
    a, b = Node(database, "a"), Node(database, "b")
    a.relay.start()
    b.relay.start()
    await _until(lambda: a.relay.listens == 1 and b.relay.listens == 1)
    yield a, b
    await a.relay.close()
    await b.relay.close()


async def test_each_event_reaches_the_other_node_once_and_in_order(nodes, database):
    a, b = nodes
    large = _body("big", text="y" * 20_000)
    for body in (_body("e1"), large, _body("e2")):
        await a.relay.on_event(body)
    await b.relay.on_event(_body("from-b"))
    await _until(lambda: len(b.received) == 3 and a.received)
    # e1 again (a batch retried after its commit went unseen), in a transaction of its own.
    await a.relay.on_event(_body("e1"))
    await a.relay.on_event(_body("e3"))
    await _until(lambda: "e3" in b.ids())
    await asyncio.sleep(0.3)  # time for an echo, were there one
    assert b.ids() == ["e1", "big", "e2", "e3"]
    assert a.ids() == ["from-b"]  # a gets b's event, neither its own
    assert b.received[1].data == large.stamped("a")
    assert msgspec.json.decode(b.received[0].data)["node"] == "a"
    with psycopg.connect(database) as conn:  # the large one went through the table
        assert conn.execute("SELECT count(*) FROM gowa.event_relay").fetchone() == (1,)


async def test_terminated_connections_come_back(nodes, database):
    """b's listener and a's sender lose their backends: b listens again, a sends again."""
    a, b = nodes
    await a.relay.on_event(_body("before"))
    await _until(lambda: b.ids() == ["before"])
    terminated = time.time()
    with psycopg.connect(database, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT application_name, pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() "
            "AND application_name IN ('gowa-events-listen b', 'gowa-events-send a') "
            "ORDER BY 1"
        ).fetchall()
    assert killed == [("gowa-events-listen b", True), ("gowa-events-send a", True)]
    await _until(lambda: b.relay.listens == 2)
    # b says when it may have missed a's events; a, whose listener stayed, says nothing.
    assert len(b.gaps) == 1 and terminated <= b.gaps[0][0] <= b.gaps[0][1], b.gaps
    assert a.gaps == []
    await a.relay.on_event(_body("after"))
    await _until(lambda: b.ids() == ["before", "after"])


async def test_stored_events_are_deleted_once_old(database, monkeypatch):
    monkeypatch.setattr(r, "KEEP_S", 5.0)
    a, b = Node(database, "a"), Node(database, "b")
    a.relay.start()
    b.relay.start()
    try:
        await _until(lambda: b.relay.listens == 1)
        await a.relay.on_event(_body("big", text="z" * 10_000))
        await _until(lambda: b.ids() == ["big"])

        def stored() -> int:
            with psycopg.connect(database) as conn:
                row = conn.execute("SELECT count(*) FROM gowa.event_relay").fetchone()
            assert row is not None
            return row[0]

        # Deleted without another event to send: the sender looks again while idle.
        await _until(lambda: stored() == 0, timeout=30)
    finally:
        await a.relay.close()
        await b.relay.close()


async def test_a_restarted_server_is_listened_to_again_and_missed_events_told(pg_server):
    """The server stops (a restart): an event sent meanwhile waits at the sender and goes
    once the server is back, before the next; the listeners, back too, report the span
    they may have missed."""
    PostgresStorage(pg_server.url).close()
    a, b = Node(pg_server.url, "a"), Node(pg_server.url, "b")
    a.relay.start()
    b.relay.start()
    try:
        await _until(lambda: a.relay.listens == 1 and b.relay.listens == 1)
        await a.relay.on_event(_body("before"))
        await _until(lambda: b.ids() == ["before"])
        await asyncio.to_thread(pg_server.stop, "fast")
        await a.relay.on_event(_body("meanwhile"))  # a cannot send it yet
        await asyncio.sleep(1)
        await asyncio.to_thread(pg_server.start)
        await _until(lambda: b.relay.listens == 2, timeout=30)
        await a.relay.on_event(_body("after"))
        # After "meanwhile" (which b gets if it listened again before a could send it).
        await _until(lambda: b.ids()[-1:] == ["after"], timeout=30)
        assert b.ids() in (["before", "meanwhile", "after"], ["before", "after"])
        assert len(b.gaps) == 1 and len(a.gaps) == 1
    finally:
        await a.relay.close()
        await b.relay.close()


async def test_a_listener_back_reads_the_registry_changes_it_missed(database):
    """A change made while the listener was down sent its notice to nobody: the node
    reads sessions and keys again as soon as it listens again, not at its next round."""
    storage = PostgresStorage(database)
    registry = storage.registry
    registry.create("s1", SessionConfig(), "stopped")
    registry.add_key(ApiKeyRecord("k1", "s1", ("s1",), "full", "d1", 1.0))
    hub = EventHub(registry, "a")
    relay = EventRelay(database, "a", hub.receive, hub.gap, hub.registry_changed)
    relay.start()
    try:
        await _until(lambda: relay.listens == 1)
        schema = postgres.quoted(postgres.REGISTRY_SCHEMA)
        with psycopg.connect(database, autocommit=True) as conn:
            # Changed with no notice, as if sent while the listener was away.
            conn.execute(f"DELETE FROM {schema}.api_keys WHERE id = 'k1'")
            conn.execute(f"DELETE FROM {schema}.sessions WHERE id = 's1'")
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = 'gowa-events-listen a'"
            )
        assert registry.get_key("k1") is not None and registry.get("s1") is not None
        await _until(lambda: relay.listens == 2)
        assert registry.get_key("k1") is None
        assert registry.get("s1") is None
    finally:
        await relay.close()
        storage.close()
