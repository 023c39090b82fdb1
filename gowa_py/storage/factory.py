"""Opening the gateway's stores: the one place the gateway chooses a storage backend.

The gateway, supervisor and deliverer are typed against ``gowa_py.storage.interfaces``;
this module maps them to an implementation, chosen by the ``database_url`` setting:

- none (the default): SQLite files in the data dir, the registry in ``gowa.db``, a
  session's webhook outbox in its ``chats.db``;
- ``postgresql://...``: one PostgreSQL database, the registry in the schema ``gowa``, a
  session's outbox in the session's own schema, all through one small pool.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
from pathlib import Path

from gowa_py.config import ConfigError
from gowa_py.privatefile import private_sqlite
from gowa_py.registry import Registry
from gowa_py.storage import (
    chats_schema,
    pg_export,
    pg_import,
    pg_schema,
    postgres,
    registry_schema,
    sqlitefile,
)
from gowa_py.storage.interfaces import (
    GatewayStorage,
    OutboxStorage,
    RegistryStorage,
    SignInStorage,
    WorkerDatabase,
)
from gowa_py.storage.signins import SharedSignIns
from gowa_py.storage.sql import POSTGRESQL, SQLITE
from gowa_py.webhooks.outbox import TABLE, Outbox

log = logging.getLogger("gowa.storage")

#: The gateway's connections to PostgreSQL: the event loop's thread, the deliverer's
#: start-up scan, and headroom for a statement still running in another thread.
GATEWAY_POOL_SIZE = 4
#: Worker starts that make their database login at once (in threads, on the pool):
#: the rest of the pool stays free for the event loop, which waits (and every task with
#: it) when a node taking ten sessions over holds all four in role updates.
LOGINS_AT_ONCE = 2


def sqlite_registry(path: Path) -> Registry:
    """The registry in the SQLite file ``path`` (created or migrated as needed)."""
    private_sqlite(path)
    conn = sqlitefile.shared(path)
    conn.row_factory = sqlite3.Row
    registry_schema.apply(conn, path)
    return Registry(conn, conn.close)


def sqlite_outbox(path: Path) -> Outbox:
    """The webhook outbox in the session's SQLite ``chats.db`` at ``path``."""
    private_sqlite(path)
    conn = sqlitefile.shared(path)
    chats_schema.apply(conn, path)
    return Outbox(conn, SQLITE, TABLE, conn.close)


class SqliteStorage:
    """The embedded default: files under the data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.sessions_dir = data_dir / "sessions"
        self.registry: RegistryStorage = sqlite_registry(data_dir / "gowa.db")
        #: One gateway: its dashboard sign-ins stay in its memory.
        self.sign_ins: SignInStorage | None = None

    def open_outbox(self, session_id: str) -> OutboxStorage:
        folder = self.sessions_dir / session_id
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return sqlite_outbox(folder / "chats.db")

    def existing_outbox(self, session_id: str) -> OutboxStorage | None:
        path = self.sessions_dir / session_id / "chats.db"
        return sqlite_outbox(path) if path.exists() else None

    def adopt_stores(self, session_id: str, folder: Path) -> None:
        """An imported session's stores (``whatsmeow.db``, ``chats.db``) stay the files
        in its unpacked folder, which becomes the session's."""

    def discard_stores(self, session_id: str) -> None:
        """Nothing outside the session's folder to remove."""

    def worker_database(self, session_id: str) -> WorkerDatabase:
        return WorkerDatabase()  # the worker opens the files in its session folder

    def export_stores(self, session_id: str, folder: Path) -> None:
        """The stores are files in the session's folder: an export copies them with it."""

    def close(self) -> None:
        self.registry.close()


class PostgresStorage:
    """One PostgreSQL database shared by the gateway and its workers.

    Each session's worker logs in as a role of its own that owns the session's schema
    and nothing else, so a compromised worker cannot read other sessions or the
    registry, as it cannot read their files on SQLite. That needs a database user who
    may create roles; without it, workers log in as the gateway's user (and can).

    With ``pooler_url`` (PgBouncer in transaction mode, docs/storage.md#pgbouncer), the
    workers log in there instead, each as its session's role; the gateway's own
    connections (the registry, outboxes, roles and schemas) stay direct.
    """

    def __init__(self, url: str, pooler_url: str | None = None) -> None:
        # One connection of its own first: a wrong URL or an unreachable server fails here
        # at once with the server's reason, where the pool would retry in the background.
        with postgres.connect(url, postgres.REGISTRY_SCHEMA, "gowa-gateway") as conn:
            postgres.migrate(conn, postgres.REGISTRY_SCHEMA, pg_schema.REGISTRY, "the registry")
            self.roles = postgres.can_create_roles(conn)
            self._database = postgres.current_database(conn)
        if pooler_url and not self.roles:
            raise ConfigError(
                "database_pooler_url needs a database user who may create roles: a pooler "
                "keeps one pool per login, and workers on the gateway's login would share "
                "it (docs/storage.md#pgbouncer)"
            )
        if not self.roles:
            log.warning(
                "the database user may not create roles: every worker logs in as it, and a "
                "compromised worker could read every session's data (docs/storage.md)"
            )
        self.url = url
        self.pooler_url = pooler_url
        self.db = postgres.PgPool(url, GATEWAY_POOL_SIZE)
        self.registry: RegistryStorage = Registry(self.db, lambda: None, self._drop, self._announce)
        #: Every node of the cluster honours a sign-in made on any of them.
        self.sign_ins: SignInStorage | None = SharedSignIns(self.db)
        self._ready: set[str] = set()
        self._logins = threading.BoundedSemaphore(LOGINS_AT_ONCE)

    def _announce(self, what: str) -> None:
        """Tell the other nodes what changed in the registry (:class:`Registry`)."""
        self.db.execute("SELECT pg_notify(?, ?)", [postgres.REGISTRY_CHANNEL, what])

    def _role(self, schema: str) -> str | None:
        return postgres.session_role(self._database, schema) if self.roles else None

    def _schema(self, session_id: str) -> str:
        """The session's schema (and role), made or migrated the first time it is asked for."""
        schema = postgres.session_schema(session_id)
        if schema not in self._ready:
            role = self._role(schema)
            with self.db.connection() as conn:
                if role is not None:
                    postgres.provide_role(conn, role, None)
                    postgres.pin_search_path(conn, role, schema)
                postgres.migrate(conn, schema, pg_schema.SESSION, f"session {session_id}", role)
            self._ready.add(schema)
        return schema

    def worker_database(self, session_id: str) -> WorkerDatabase:
        """The URL the session's next worker logs in with: its own role, with a password
        new for this worker, on the pooler when there is one."""
        with self._logins:
            schema = self._schema(session_id)
            role = self._role(schema)
            if role is None:
                return WorkerDatabase(self.url)
            password = secrets.token_urlsafe(24)
            with self.db.connection() as conn:
                postgres.provide_role(conn, role, password)
        if self.pooler_url:
            return WorkerDatabase(postgres.role_url(self.pooler_url, role, password), True)
        return WorkerDatabase(postgres.role_url(self.url, role, password))

    def _drop(self, session_id: str) -> None:
        schema = postgres.session_schema(session_id)
        self._ready.discard(schema)
        role = self._role(schema)
        with self.db.connection() as conn:
            postgres.drop_schema(conn, schema)
            if role is not None:
                postgres.drop_role(conn, role)

    def open_outbox(self, session_id: str) -> OutboxStorage:
        table = f"{postgres.quoted(self._schema(session_id))}.{TABLE}"
        return Outbox(self.db, POSTGRESQL, table, lambda: None)

    def adopt_stores(self, session_id: str, folder: Path) -> None:
        """Copy an imported session's SQLite stores (an unpacked session archive) into
        its new schema; the files are removed from the folder, which keeps its media."""
        role = self._role(postgres.session_schema(session_id))
        with self.db.connection() as conn:
            if role is not None:
                postgres.provide_role(conn, role, None)
            pg_import.import_session(conn, session_id, folder, role)
        for name in ("whatsmeow.db", "chats.db"):
            (folder / name).unlink(missing_ok=True)

    def discard_stores(self, session_id: str) -> None:
        """Drop the schema :meth:`adopt_stores` made for an import that failed later."""
        self._drop(session_id)

    def export_stores(self, session_id: str, folder: Path) -> None:
        """Write the session's schema into ``folder`` as the SQLite stores an archive holds."""
        with self.db.connection() as conn:
            pg_export.export_session(conn, session_id, folder)

    def existing_outbox(self, session_id: str) -> OutboxStorage | None:
        schema = postgres.session_schema(session_id)
        with self.db.connection() as conn:
            found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema])
            if found.fetchone() is None:
                return None
        return self.open_outbox(session_id)

    def close(self) -> None:
        self.db.close()


def open_storage(
    database_url: str | None, data_dir: Path, pooler_url: str | None = None
) -> GatewayStorage:
    """The gateway's storage: PostgreSQL when ``database_url`` names it (its workers
    through ``pooler_url`` if given), else SQLite."""
    if database_url:
        return PostgresStorage(database_url, pooler_url)
    return SqliteStorage(data_dir)
