"""Two gateway nodes on one PostgreSQL and the sandbox: the event stream of a node shows
the sessions another node runs, each event once, with the node that ran it, filtered for
a scoped key as its own sessions' are; a listener whose database backend is terminated
listens again."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.backends import ScratchDatabase
from tests.e2e.clusterlib import pinned
from tests.e2e.conftest import EventWatcher, is_event, new_phone, pair
from tests.procs import wait_until
from tests.sim.harness import SandboxProcess

pytestmark = pytest.mark.integration

ADMIN = "cluster-events-admin"


def _node(gateway_factory, tmp_path: Path, sandbox: SandboxProcess, url: str, name: str):
    env = {
        "GOWA_DATABASE_URL": url,
        "GOWA_NODE_ID": name,
        "GOWA_API_KEY": ADMIN,
        "GOWA_HOST": "127.0.0.1",
        "GOWA_SAMPLE_INTERVAL": "1",
    }
    return gateway_factory(
        env=env, data_dir=tmp_path / name / "data", args=["--sandbox", sandbox.url]
    )


def _is(name: str, session_id: str, text: str) -> Callable[[dict], bool]:
    """An event ``name`` of the session whose payload holds ``text``."""
    return lambda e: (
        e["event"] == name and e["session_id"] == session_id and text in json.dumps(e["payload"])
    )


def _texts(watcher: EventWatcher, name: str, session_id: str, text: str) -> list[dict]:
    return watcher.find(_is(name, session_id, text))


def _listener(database: ScratchDatabase, node: str) -> int | None:
    """The backend pid of the node's connection listening to the other nodes' events."""
    with psycopg.connect(database.url) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            (f"gowa-events-listen {node}",),
        ).fetchone()
    return row[0] if row else None


def test_a_node_streams_the_events_of_sessions_another_node_runs(
    gateway_factory, sandbox, database, tmp_path
):
    a = _node(gateway_factory, tmp_path, sandbox, database.url, "a")
    b = _node(gateway_factory, tmp_path, sandbox, database.url, "b")
    phones = {sid: new_phone(sandbox, f"1555000081{i}", sid) for i, sid in enumerate("yzw")}
    stream = a.http.base.replace("http", "ws") + "/api/dashboard/events"
    admin = EventWatcher(stream, {"X-Api-Key": ADMIN})
    one = EventWatcher(stream + "?session_id=z", {"X-Api-Key": ADMIN})
    # b's own stream: its events once, not echoed back through the database.
    own = EventWatcher(
        b.http.base.replace("http", "ws") + "/api/dashboard/events", {"X-Api-Key": ADMIN}
    )
    scoped: EventWatcher | None = None
    try:
        # Both sessions run on b; a's stream shows them getting there.
        pair(pinned(b), sandbox, "y", phones["y"])
        pair(pinned(b), sandbox, "z", phones["z"])
        connected = admin.wait(
            is_event("session.status", "y", status="CONNECTED"),
            20,
            "y CONNECTED on a's stream",
        )
        assert connected["node"] == "b" and set(connected) == {
            "id",
            "event",
            "session_id",
            "device_id",
            "timestamp",
            "payload",
            "node",
        }

        # a's dashboard lists y with the memory b's worker uses (b's samples).
        def y_on_a() -> dict:
            status, body = a.http.get("/api/dashboard/sessions")
            assert status == 200, body
            return next(s for s in body["results"] if s["id"] == "y")

        wait_until(lambda: y_on_a()["node"] == "b", 20, what="a knows y runs on b")
        wait_until(lambda: y_on_a()["worker"]["memory"]["rss"] > 0, 20, what="y's memory on a")
        assert y_on_a()["worker"]["pid"] is None  # not a's worker
        # a's totals count b's workers (a runs none).
        wait_until(
            lambda: a.http.get("/api/dashboard/stats")[1]["results"]["workers"] == 2,
            20,
            what="a's totals with b's two workers",
        )
        assert a.http.get("/api/dashboard/stats")[1]["results"]["memory"]["rss"] > 0

        # A key for y only, made on a (the node whose stream it reads) once a knows y.
        wait_until(lambda: a.http.get("/api/sessions/y")[0] == 200, 20, what="a knows y")
        status, body = a.http.post(
            "/api/keys", {"sessions": ["y"], "scope": "read", "name": "y-only"}
        )
        assert status == 201, body
        scoped = EventWatcher(stream, {"X-Api-Key": body["results"]["key"]})

        # y receives a message and sends one; z receives one.
        for sender, to, text in (("w", "y", "to y"), ("w", "z", "to z")):
            status, body = sandbox.api(
                "POST", f"/sim/phones/{phones[sender]}/send", {"to": phones[to], "text": text}
            )
            assert status == 200, body
        status, body = b.http.post(
            "/api/y/send/message", {"phone": phones["w"], "message": "y out"}
        )
        assert status == 200, body
        admin.wait(_is("message", "y", "to y"), 20, "y's message")
        admin.wait(_is("message", "z", "to z"), 20, "z's message")
        admin.wait(_is("message.sent", "y", "y out"), 20, "y's send")
        scoped.wait(_is("message", "y", "to y"), 20, "y's (scoped)")
        one.wait(_is("message", "z", "to z"), 20, "z's (z's stream)")
        own.wait(_is("message", "y", "to y"), 20, "y's (b's stream)")
        time.sleep(1)  # time for a duplicate, were there one
        for watcher, name, session_id, text in (
            (admin, "message", "y", "to y"),
            (admin, "message", "z", "to z"),
            (admin, "message.sent", "y", "y out"),
            (scoped, "message", "y", "to y"),
            (own, "message", "y", "to y"),
        ):
            found = _texts(watcher, name, session_id, text)
            assert len(found) == 1 and found[0]["node"] == "b", found
        # The scoped key sees y's events only; the stream of z z's only.
        assert {e["session_id"] for e in scoped.find(lambda e: True)} == {"y"}
        assert {e["session_id"] for e in one.find(lambda e: True)} == {"z"}

        # A state change on b: a's stream tells it, and a's own answer agrees at once
        # (not one renewal round later). The stream already holds z's STOPPED of its
        # creation: the stop's is another one.
        stopped = is_event("session.status", "z", status="STOPPED")
        earlier = {e["id"] for e in admin.find(stopped)}
        status, body = b.http.post("/api/sessions/z/stop")
        assert status == 200, body
        admin.wait(
            lambda e: stopped(e) and e["id"] not in earlier,
            20,
            "z STOPPED on a's stream",
        )
        status, body = pinned(a).http.get("/api/sessions/z")
        assert status == 200 and body["results"]["status"] == "STOPPED", body

        # a's listening connection is terminated: it listens again, later events arrive.
        before = _listener(database, "a")
        assert before is not None
        with psycopg.connect(database.url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (before,))
        wait_until(
            lambda: _listener(database, "a") not in (None, before), 15, what="a listens again"
        )
        # a's streams are told they may have missed events meanwhile.
        gap = admin.wait(lambda e: e["event"] == "stream.gap", 20, "a gap notice")
        assert gap["node"] == "a" and gap["payload"]["since"] <= gap["payload"]["until"]
        one.wait(lambda e: e["event"] == "stream.gap" and e["session_id"] == "z", 20, "z's")
        status, body = sandbox.api(
            "POST", f"/sim/phones/{phones['w']}/send", {"to": phones["y"], "text": "after drop"}
        )
        assert status == 200, body
        admin.wait(_is("message", "y", "after drop"), 20, "after drop")
        time.sleep(1)
        assert len(_texts(admin, "message", "y", "after drop")) == 1
        assert all(e["node"] == "b" for e in admin.find(lambda e: e["session_id"] in ("y", "z")))

        # z deleted on b: gone from a's answers as soon as a's stream says so.
        status, body = b.http.call("DELETE", "/api/sessions/z")
        assert status == 200, body
        admin.wait(
            lambda e: e["event"] == "session.deleted" and e["session_id"] == "z",
            20,
            "z deleted, on a's stream",
        )
        assert pinned(a).http.get("/api/sessions/z")[0] == 404
    finally:
        own.close()
        admin.close()
        if scoped is not None:
            scoped.close()
        one.close()
