"""An in-process gateway on PostgreSQL when the database goes away and comes back."""

from __future__ import annotations

import psycopg
from psycopg import sql

from tests.backends import server_url


async def test_lost_connections_are_replaced_and_a_gone_database_is_503(make_client, test_database):
    client = await make_client({"GOWA_DATABASE_URL": test_database.url})
    try:
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
        with psycopg.connect(server_url(), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(test_database.name))
            )
        response = await client.post("/api/sessions", json={"session_id": "c", "start": False})
        assert response.status == 503
        assert (await response.json())["code"] == "DATABASE_UNAVAILABLE"
    finally:
        with psycopg.connect(server_url(), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(test_database.name)))
