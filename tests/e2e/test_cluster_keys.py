"""Two gateway nodes on one PostgreSQL: what an admin changes on one node holds on the
other at once, not at its next renewal round (a minute here) nor after a restart. A
scoped key made on b works on a (HTTP and the event stream); revoked on b, a refuses it
and closes its streams within a second or two; a key made on a is revoked through b; a
session deleted on b leaves a's list at once, may be made again on a, and leaves no key
made on a bound to it; a config PATCHed on b shows in a's session list."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from tests.e2e.clusterlib import LEASES, LOCAL, leases
from tests.procs import Gateway, wait_until

pytestmark = pytest.mark.integration

KEY = "cluster-admin-key"
#: A renewal round a minute apart: a change seen sooner came through NOTIFY.
ROUNDS = leases(180, 60, 3)
#: The bound docs/cluster.md states for a change announced on another node, with room
#: for a loaded machine.
PROMPT_S = 3.0


def _node(
    gateway_factory, tmp_path: Path, database, name: str, rounds: dict[str, str] = ROUNDS
) -> Gateway:
    return gateway_factory(
        env={
            "GOWA_DATABASE_URL": database.url,
            "GOWA_NODE_ID": name,
            "GOWA_API_KEY": KEY,
            **rounds,
        },
        data_dir=tmp_path / name / "data",
    )


def _listening(database, *nodes: str) -> bool:
    """Whether each node's relay listens (its LISTEN ran on its listening connection)."""
    with psycopg.connect(database.url) as conn:
        rows = conn.execute(
            "SELECT application_name FROM pg_stat_activity "
            "WHERE application_name LIKE 'gowa-events-listen %' "
            "AND (query LIKE 'LISTEN %' OR query = 'SELECT 1')"
        ).fetchall()
    return {f"gowa-events-listen {n}" for n in nodes} <= {row[0] for row in rows}


def _as(key: str) -> dict[str, str]:
    """A request with the scoped key, answered by the node it is sent to."""
    return {**LOCAL, "X-Api-Key": key}


def _make_key(node: Gateway, sessions: list[str], name: str) -> tuple[str, str]:
    status, body = node.http.post(
        "/api/keys", {"sessions": sessions, "scope": "full", "name": name}, headers=LOCAL
    )
    assert status == 201, body
    return body["results"]["id"], body["results"]["key"]


async def _stream_until_revoked(a: Gateway, b: Gateway, key: str, key_id: str) -> float:
    """Open a's event stream with ``key``, revoke the key on b: the seconds until a
    closed the stream for it (1008)."""
    url = a.http.base.replace("http", "ws", 1) + "/api/dashboard/events?session_id=s1"
    # No close frame sent back by the client: its reply, racing the server's end of the
    # connection, would overwrite the close code read.
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, headers=_as(key), autoclose=False) as ws,
    ):
        started = time.monotonic()
        status, body = await asyncio.to_thread(
            b.http.call, "DELETE", f"/api/keys/{key_id}", headers=LOCAL
        )
        assert status == 200, body
        message = await ws.receive(timeout=PROMPT_S)
        assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1008), message
        return time.monotonic() - started


def _config_on(node: Gateway, session_id: str) -> dict[str, Any]:
    status, body = node.http.get("/api/sessions", headers=LOCAL)
    assert status == 200, body
    return next(s["config"] for s in body["results"] if s["id"] == session_id)


def test_keys_and_configs_changed_on_one_node_hold_on_the_other_at_once(
    gateway_factory, database, tmp_path
):
    a = _node(gateway_factory, tmp_path, database, "a")
    b = _node(gateway_factory, tmp_path, database, "b")
    wait_until(lambda: _listening(database, "a", "b"), 30, what="both nodes listening")
    for session_id in ("s1", "s2"):
        status, body = b.http.post(
            "/api/sessions", {"session_id": session_id, "start": False}, headers=LOCAL
        )
        assert status == 201, body

    # Made on b, the key works on a at once, for its session only.
    key_id, key = _make_key(b, ["s1"], "s1-only")
    assert a.http.get("/api/sessions/s1", headers=_as(key))[0] == 200
    assert a.http.get("/api/sessions/s2", headers=_as(key))[0] == 403
    status, body = a.http.get("/api/keys", headers=LOCAL)
    assert key_id in {k["id"] for k in body["results"]}, body

    # Revoked on b: a closes the key's event stream and refuses the key.
    closed_after = asyncio.run(_stream_until_revoked(a, b, key, key_id))
    assert closed_after < PROMPT_S
    status, body = a.http.get("/api/sessions/s1", headers=_as(key))
    assert (status, body["code"]) == (401, "UNAUTHORIZED"), body
    status, body = a.http.get("/api/keys", headers=LOCAL)
    assert key_id not in {k["id"] for k in body["results"]}, body

    # Made on a for both sessions; s2 deleted on b, which never saw the key made: s2
    # leaves a's list at once, a may make an s2 again, and the key does not reach it.
    both_id, both = _make_key(a, ["s1", "s2"], "both")
    assert a.http.get("/api/sessions/s2", headers=_as(both))[0] == 200
    assert b.http.call("DELETE", "/api/sessions/s2", headers=LOCAL)[0] == 200
    wait_until(
        lambda: (
            "s2" not in {s["id"] for s in a.http.get("/api/sessions", headers=LOCAL)[1]["results"]}
        ),
        PROMPT_S,
        what="s2 gone from a's list",
    )
    assert a.http.get("/api/sessions/s2", headers=LOCAL)[0] == 404
    status, body = a.http.post("/api/sessions", {"session_id": "s2", "start": False}, headers=LOCAL)
    assert status == 201, body
    assert b.http.get("/api/sessions/s2", headers=LOCAL)[0] == 200
    wait_until(
        lambda: a.http.get("/api/sessions/s2", headers=_as(both))[0] == 403,
        PROMPT_S,
        what="a reading the key b took s2 off",
    )
    assert a.http.get("/api/sessions/s1", headers=_as(both))[0] == 200
    # Revoked through b, which never saw it made.
    assert b.http.call("DELETE", f"/api/keys/{both_id}", headers=LOCAL)[0] == 200
    wait_until(
        lambda: a.http.get("/api/sessions/s1", headers=_as(both))[0] == 401,
        PROMPT_S,
        what="a refusing the key revoked on b",
    )

    # A config PATCHed on b shows in a's session list.
    assert _config_on(a, "s1")["idle_timeout"] is None
    status, body = b.http.call(
        "PATCH", "/api/sessions/s1", {"config": {"idle_timeout": 600}}, headers=LOCAL
    )
    assert status == 200, body
    wait_until(
        lambda: _config_on(a, "s1")["idle_timeout"] == 600,
        PROMPT_S,
        what="b's config change in a's session list",
    )


def _held(node: Gateway) -> int:
    """The sessions the node holds a runner of (``/readyz``; what ``max_sessions`` counts)."""
    status, body = node.http.get("/readyz")
    assert status == 200, body
    return body["results"]["sessions"]


def test_a_session_deleted_on_another_node_is_dropped_at_the_next_round(
    gateway_factory, database, tmp_path
):
    """s deleted through b: a drops its idle runner of s (no longer counted against
    ``max_sessions``) at its next renewal round, a second here, not only when an s is
    made again on a."""
    a = _node(gateway_factory, tmp_path, database, "a", LEASES)
    b = _node(gateway_factory, tmp_path, database, "b", LEASES)
    status, body = b.http.post("/api/sessions", {"session_id": "s", "start": False}, headers=LOCAL)
    assert status == 201, body
    assert a.http.get("/api/sessions/s", headers=LOCAL)[0] == 200  # a's idle runner of s
    assert _held(a) == 1
    assert b.http.call("DELETE", "/api/sessions/s", headers=LOCAL)[0] == 200
    wait_until(lambda: _held(a) == 0, 10, what="a dropping its runner of the deleted s")
