"""Workers through PgBouncer in transaction mode (config/pgbouncer, as shipped): more
sessions than server connections pair, talk and come back after a gateway restart
without a QR code, whatsmeow's store and ours multiplexed on a few server connections."""

from __future__ import annotations

import threading

import psycopg
import pytest

from gowa_py.storage import postgres
from tests.e2e.conftest import new_phone, pair
from tests.pgbouncer import PgBouncer
from tests.procs import Gateway, wait_until

pytestmark = pytest.mark.integration

SESSIONS = 8
SERVER_CONNECTIONS = 3
PHONES = [f"1555000{700 + n}" for n in range(SESSIONS)]


class Peak:
    """The most server connections the sessions' roles held at once, sampled."""

    def __init__(self, bouncer: PgBouncer) -> None:
        self.bouncer = bouncer
        self.highest = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.highest = max(self.highest, self.bouncer.server_connections())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _history(gateway: Gateway, session_id: str, phone: str) -> list[str]:
    status, body = gateway.http.get(f"/api/{session_id}/chat/{phone}@s.whatsapp.net/messages")
    assert status == 200, body
    return [item["content"] for item in body["results"]["data"]]


def _send_around(gateway: Gateway, text: str) -> None:
    """Each session sends to the next; every message lands in the receiver's chat store."""
    for n in range(SESSIONS):
        status, body = gateway.http.post(
            f"/api/pb{n}/send/message",
            {"phone": PHONES[(n + 1) % SESSIONS], "message": f"{text} {n}"},
        )
        assert status == 200, body
    for n in range(SESSIONS):
        receiver = f"pb{(n + 1) % SESSIONS}"
        wait_until(
            lambda: f"{text} {n}" in _history(gateway, receiver, PHONES[n]),  # noqa: B023
            20,
            what=f"{text} {n} in {receiver}'s chat history",
        )


def test_more_sessions_than_server_connections_through_pgbouncer(
    gateway_factory, sandbox, test_database, open_tmp
):
    bouncer = PgBouncer(test_database.url, max_db_connections=SERVER_CONNECTIONS).start()
    env = {"GOWA_DATABASE_URL": test_database.url, "GOWA_DATABASE_POOLER_URL": bouncer.url}
    gateway = gateway_factory(
        env=env, data_dir=open_tmp / "data", args=["--sandbox", sandbox.url], start=False
    )
    peak = Peak(bouncer)
    try:
        gateway.start()
        for n, phone in enumerate(PHONES):
            new_phone(sandbox, phone, f"Pooled {n}")
            pair(gateway, sandbox, f"pb{n}", phone)
        _send_around(gateway, "pooled")

        gateway.stop()  # the workers come back with new passwords, through auth_query
        gateway.start()
        for n in range(SESSIONS):
            gateway.wait_status(f"pb{n}", {"CONNECTED"}, timeout=30)  # no QR code again
        _send_around(gateway, "after the restart")

        # Directly, every worker holds 2 or 3 connections as its role all along (16 or
        # more here); through PgBouncer, all the sessions' roles together held about its
        # cap (a server connection it just closed to give the slot to another session's
        # pool may still be listed for a moment).
        peak.close()
        assert 1 <= peak.highest < SESSIONS

        # PgBouncer's auth user reads a session role's verifier and no other role's.
        role = postgres.session_role(test_database.name, "gowa_s_pb0")
        with psycopg.connect(bouncer.auth_user_url()) as conn:
            query = "SELECT usename, passwd FROM pgbouncer.session_login(%s)"
            found = conn.execute(query, [role]).fetchall()
            assert [name for name, _ in found] == [role]
            assert found[0][1].startswith("SCRAM-SHA-256$")
            assert conn.execute(query, [bouncer.auth_user]).fetchall() == []  # has one too
    finally:
        peak.close()
        gateway.cleanup()
        bouncer.stop()
        test_database.empty()
