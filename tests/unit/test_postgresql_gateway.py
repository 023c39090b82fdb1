"""An in-process gateway on PostgreSQL when the database goes away and comes back."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from gowa_py.config import ConfigError
from gowa_py.models import SessionConfig
from gowa_py.storage import postgres
from gowa_py.storage.factory import PostgresStorage
from tests.backends import ScratchDatabase, server_url
from workers.eventlog import EventLog
from workers.stores import postgresql_db


async def test_lost_connections_are_replaced_and_a_gone_database_is_503(make_client, test_database):
    client = await make_client({"GOWA_DATABASE_URL": test_database.url})
    response = await client.post("/api/sessions", json={"session_id": "a", "start": False})
    assert response.status == 201, await response.text()
    # The server drops the gateway's connections (as a restart does): the next request
    # gets a fresh one from the pool, not the dead one.
    with psycopg.connect(test_database.url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'gowa-gateway' AND datname = current_database()"
        )
    response = await client.post("/api/sessions", json={"session_id": "b", "start": False})
    assert response.status == 201, await response.text()

    # The database is gone: a write answers 503 with its code, not 500, and in time.
    test_database.drop()
    try:
        response = await client.post("/api/sessions", json={"session_id": "c", "start": False})
        assert response.status == 503
        assert (await response.json())["code"] == "DATABASE_UNAVAILABLE"
    finally:
        test_database.create()


def test_a_workers_role_reaches_its_own_session_and_nothing_else(test_database):
    """What a compromised worker could do with the URL it is given: its own schema, yes;
    another session's or the registry, no. Deleting the session drops its role."""
    storage = PostgresStorage(test_database.url)
    try:
        assert storage.roles  # the test server's user is a superuser
        for session_id in ("a", "b"):
            storage.registry.create(session_id, SessionConfig(), "stopped")
        url, pooled = storage.worker_database("a")
        assert not pooled
        storage.worker_database("b")
        storage.open_outbox("b").enqueue("e1", "message", [("http://b/hook", "k")], b"{}")

        db = postgresql_db(url, "a")  # the worker's stores, logged in as its role
        try:
            assert EventLog(db, "a").append("x", {}).seq == 1
        finally:
            db.close()
        outbox = storage.open_outbox("a")  # the gateway still reaches the worker's tables
        assert outbox.enqueue("e2", "message", [("http://a/hook", "k")], b"{}") == 1
        with psycopg.connect(url, autocommit=True) as worker:
            assert worker.execute("SELECT current_user").fetchone()[0].startswith("gowa_r_")
            # The role's own search_path, for a pooler's logins, which cannot set it.
            assert worker.execute("SHOW search_path").fetchone()[0] == "gowa_s_a"
            for table in (
                '"gowa_s_b".webhook_deliveries',
                '"gowa_s_b".whatsmeow_version',
                "gowa.sessions",
                "gowa.api_keys",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    worker.execute(f"SELECT * FROM {table}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                worker.execute("CREATE SCHEMA elsewhere")

        role = postgres.session_role(test_database.name, "gowa_s_a")

        def verifier() -> str:
            with psycopg.connect(test_database.url) as admin:
                query = "SELECT rolpassword FROM pg_authid WHERE rolname = %s"
                return str(admin.execute(query, [role]).fetchone()[0])

        # A new password for each worker; the server only ever got its SCRAM verifier.
        first = verifier()
        assert first.startswith("SCRAM-SHA-256$")
        assert urlsplit(url).password not in first
        assert urlsplit(storage.worker_database("a").url).username == role
        assert verifier() != first
        storage.registry.delete("a")
        with psycopg.connect(test_database.url) as admin:
            assert (
                admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchall() == []
            )
    finally:
        storage.close()
        test_database.empty()


def test_a_dropped_test_database_takes_its_roles_and_no_others():
    """Roles are the server's, so DROP DATABASE leaves them: a test run's database drops
    its sessions' roles with it (a role whose schema is gone too), and only its own."""
    mine, other = ScratchDatabase(), ScratchDatabase()
    try:
        mine_roles, other_roles = _sessions_with_roles(mine), _sessions_with_roles(other)
        with psycopg.connect(mine.url, autocommit=True) as conn:
            postgres.drop_schema(conn, postgres.session_schema("b"))  # its role remains
        everything = mine_roles | other_roles
        assert _existing(everything) == everything
        mine.drop()
        assert _existing(everything) == other_roles
        other.drop()
        assert _existing(everything) == set()
    finally:
        mine.drop()
        other.drop()


def _sessions_with_roles(database: ScratchDatabase) -> set[str]:
    """Sessions "a" and "b", each given its role by a worker's URL; their roles."""
    storage = PostgresStorage(database.url)
    try:
        for session_id in ("a", "b"):
            storage.registry.create(session_id, SessionConfig(), "stopped")
            storage.worker_database(session_id)
    finally:
        storage.close()
    return {postgres.session_role(database.name, schema) for schema in ("gowa_s_a", "gowa_s_b")}


def _existing(roles: set[str]) -> set[str]:
    with psycopg.connect(server_url()) as conn:
        rows = conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [list(roles)])
        return {row[0] for row in rows}


def test_a_pooler_needs_a_user_who_may_create_roles(test_database):
    """Through PgBouncer, workers on the gateway's own login would share one pool and
    have no search_path of their own: the gateway refuses to start so."""
    user = f"gowa_plain_{secrets.token_hex(4)}"
    with psycopg.connect(test_database.url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(user)))
        admin.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(test_database.name), sql.Identifier(user)
            )
        )
    parts = urlsplit(test_database.url)
    plain = parts._replace(netloc=f"{user}@{parts.netloc.rpartition('@')[2]}").geturl()
    try:
        with pytest.raises(ConfigError, match="may create roles"):
            PostgresStorage(plain, "postgresql://127.0.0.1:6432/gowa")
    finally:
        with psycopg.connect(test_database.url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(user)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(user)))
        test_database.empty()
