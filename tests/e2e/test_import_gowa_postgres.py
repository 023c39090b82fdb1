"""``gowa import gowa --db-uri postgres://...``: GoWA's whatsmeow store in PostgreSQL.

Two sessions are paired with the sandbox by neonize workers whose whatsmeow store is
PostgreSQL (a gateway with ``database_url``); their whatsmeow tables are dumped with
pg_dump into one database's ``public`` schema, as GoWA with ``DB_URI=postgres://...``
keeps every device. The import reads that database into SQLite sessions that connect
without a QR code and message each other on the Signal sessions they inherited.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from tests.e2e.conftest import SUBPROCESS_WORKERS, EventWatcher, is_event, new_phone, pair
from tests.procs import ROOT, Gateway

pytestmark = pytest.mark.integration

ANNA, BEN = "15550001811", "15550001812"
#: Parents first: whatsmeow's foreign keys point at these.
FIRST = ("whatsmeow_device", "whatsmeow_app_state_version")


def dump_into(source_url: str, schema: str, target_url: str, into: str) -> None:
    """The whatsmeow tables (definitions and rows) of ``schema`` as pg_dump writes them,
    restored into the schema ``into`` of another database."""
    dump = subprocess.run(
        ["pg_dump", "--no-owner", "--no-privileges", "-t", f"{schema}.whatsmeow*", source_url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", target_url],
        input=dump.replace(f"{schema}.", f"{into}."),
        capture_output=True,
        text=True,
        check=True,
    )


def send(gateway: Gateway, watcher: EventWatcher, sender: str, phone: str, receiver: str) -> None:
    status, body = gateway.http.post(
        f"/api/{sender}/send/message", {"phone": phone, "message": f"from {sender}"}
    )
    assert status == 200, body
    message_id = body["results"]["message_id"]
    watcher.wait(is_event("message", receiver, id=message_id), 30, f"{receiver} gets it")


def import_gowa(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gowa_py", "import", "gowa", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "GOWA_DATABASE_URL"},
    )


def test_a_postgresql_store_is_imported(sandbox, test_database, database, tmp_path):
    new_phone(sandbox, ANNA, "Anna")
    new_phone(sandbox, BEN, "Ben")
    env = {**SUBPROCESS_WORKERS, "GOWA_DATABASE_URL": test_database.url}
    first = Gateway(tmp_path / "first", env=env, args=["--sandbox", sandbox.url])
    first.start()
    try:
        pair(first, sandbox, "pa", ANNA)
        pair(first, sandbox, "pb", BEN)
        watcher = EventWatcher(first.http.base.replace("http", "ws") + "/api/dashboard/events")
        try:
            send(first, watcher, "pa", BEN, "pb")
            send(first, watcher, "pb", ANNA, "pa")
        finally:
            watcher.close()
        assert first.stop() == 0
    finally:
        first.cleanup()
    dump_into(test_database.url, "gowa_s_pa", database.url, "public")
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA other")
    dump_into(test_database.url, "gowa_s_pb", database.url, "other")
    with psycopg.connect(database.url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'other'"
            )
        ]
        for table in sorted(
            tables, key=lambda t: (t not in FIRST, FIRST.index(t) if t in FIRST else 0)
        ):
            if table != "whatsmeow_version":
                conn.execute(
                    f"INSERT INTO public.{table} SELECT * FROM other.{table} ON CONFLICT DO NOTHING"
                )
        conn.execute("DROP SCHEMA other CASCADE")
        # GoWA still connected: refused.
        data = tmp_path / "second"
        busy = import_gowa("--db-uri", database.url, "--data-dir", str(data))
    assert busy.returncode == 1 and "other connections" in busy.stderr, busy.stderr
    assert not (data / "sessions").exists()

    result = import_gowa("--db-uri", database.url, "--data-dir", str(data), "--remove-from-source")
    assert result.returncode == 0, result.stderr
    assert f"imported 2 session(s): {ANNA}, {BEN}" in result.stdout
    with psycopg.connect(database.url) as conn:
        assert conn.execute("SELECT count(*) FROM whatsmeow_device").fetchone() == (0,)

    second = Gateway(data, env=SUBPROCESS_WORKERS, args=["--sandbox", sandbox.url])
    second.start()
    watcher = EventWatcher(second.http.base.replace("http", "ws") + "/api/dashboard/events")
    try:
        for session_id in (ANNA, BEN):
            second.wait_status(session_id, {"CONNECTED"}, timeout=30)
        assert not watcher.find(lambda e: e["event"] == "session.qr")
        send(second, watcher, ANNA, BEN, BEN)
        send(second, watcher, BEN, ANNA, ANNA)
    finally:
        watcher.close()
        second.cleanup()
