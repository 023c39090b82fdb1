"""The storage backends the storage tests run on: SQLite files and PostgreSQL.

``storage_backend`` (tests/conftest.py) hands a test one :class:`Backend` per parameter,
so the same test body checks both. PostgreSQL is the server at ``GOWA_TEST_DATABASE_URL``
(default: the local one, trust auth); a test run gets a database of its own, made at
its first use and dropped at its end, and every test leaves it without gowa's schemas.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from gowa_py.storage import postgres
from gowa_py.storage.factory import PostgresStorage, SqliteStorage
from gowa_py.storage.interfaces import GatewayStorage, OutboxStorage, RegistryStorage
from workers import stores
from workers.chatsdb import ChatsDb

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql")


def server_url() -> str:
    return os.environ.get("GOWA_TEST_DATABASE_URL") or DEFAULT_URL


class ScratchDatabase:
    """A database of this test run's own on the test server (``<prefix>_<random>``).

    Dropping it drops its sessions' roles too: roles belong to the server, not to a
    database, so ``DROP DATABASE`` leaves them behind. Only roles named after this
    database (:func:`postgres.session_role`) are dropped, never another run's.
    """

    def __init__(self, prefix: str = "gowa_test") -> None:
        self.name = f"{prefix}_{secrets.token_hex(4)}"
        self.server = server_url()
        self.url = urlunsplit(urlsplit(self.server)._replace(path="/" + self.name))
        self.create()

    def create(self) -> None:
        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def schemas(self) -> list[str]:
        """gowa's schemas in the database now."""
        with psycopg.connect(self.url) as conn:
            rows = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = 'gowa' "
                "OR nspname LIKE 'gowa\\_s\\_%' OR nspname LIKE 'gowa\\_h\\_%' ORDER BY 1"
            ).fetchall()
        return [row[0] for row in rows]

    def roles(self) -> set[str]:
        """The roles of this database's sessions: those of its sessions' schemas and of
        the sessions its registry lists (a role may outlive its schema, or precede it)."""
        schemas = {schema for schema in self.schemas() if schema != postgres.REGISTRY_SCHEMA}
        with psycopg.connect(self.url) as conn:
            if conn.execute("SELECT to_regclass('gowa.sessions')").fetchone()[0] is not None:
                for (session_id,) in conn.execute("SELECT id FROM gowa.sessions"):
                    schemas.add(postgres.session_schema(session_id))
        return {postgres.session_role(self.name, schema) for schema in schemas}

    def empty(self) -> None:
        """Drop every schema a test made, and the sessions' roles."""
        roles = self.roles()
        with psycopg.connect(self.url, autocommit=True) as conn:
            for schema in self.schemas():
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            for role in roles:
                postgres.drop_role(conn, role)

    def drop(self) -> None:
        """Drop the database, if not yet, then its sessions' roles (which own nothing once
        it is gone)."""
        with psycopg.connect(self.server, autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.name])
            if found.fetchone() is None:
                return
            roles = self.roles()
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )
            for role in roles:
                postgres.drop_role(conn, role)


class Backend:
    """Opens the stores of one backend for a test; closes them all at its end."""

    def __init__(self, name: str, data_dir: Path, database: ScratchDatabase | None) -> None:
        self.name = name
        self.data_dir = data_dir
        self.database = database
        self._opened: list[Callable[[], Any]] = []
        self._shared: GatewayStorage | None = None

    @property
    def url(self) -> str:
        assert self.database is not None, "the SQLite backend has no URL"
        return self.database.url

    def storage(self) -> GatewayStorage:
        """The gateway's storage, as ``gowa serve`` opens it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        opened: GatewayStorage = (
            PostgresStorage(self.url) if self.database else SqliteStorage(self.data_dir)
        )
        self._opened.append(opened.close)
        return opened

    def registry(self) -> RegistryStorage:
        return self.storage().registry

    def outbox(self, session_id: str = "s") -> OutboxStorage:
        """A new outbox object of the session (its cache empty), on one shared storage."""
        if self._shared is None:
            self._shared = self.storage()
        outbox = self._shared.open_outbox(session_id)
        self._opened.append(outbox.close)
        return outbox

    def session_db(self, session_id: str = "s") -> ChatsDb:
        """The worker's connection to the session's database, as a worker opens it."""
        if self.database:
            db = stores.postgresql_db(self.url, session_id)
        else:
            folder = self.data_dir / "sessions" / session_id
            folder.mkdir(parents=True, exist_ok=True)
            db = stores.sqlite_db(folder / "chats.db")
        self._opened.append(db.close)
        return db

    def close(self) -> None:
        for close in reversed(self._opened):
            close()
        if self.database:
            self.database.empty()
