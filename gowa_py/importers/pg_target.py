"""A staged session moved into a PostgreSQL gateway's database (``database_url`` set).

There a session's stores live in its own schema (``gowa_s_<id>``): the chat store's tables
made by the storage's own migrations, and whatsmeow's tables, which neonize's whatsmeow
makes on first use. The import stages a session as SQLite files first, as for an SQLite
gateway, then creates the schema and copies the rows: the chat tables by column, and
whatsmeow's tables from their own definitions (whatsmeow writes one DDL for both
dialects: bytea, BIGINT, BOOLEAN, CHECK, foreign keys), so whatsmeow finds the schema
version it made and nothing to upgrade. Booleans, stored 0/1 by SQLite, become booleans.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from gowa_py.importers import ImportRefused
from gowa_py.storage import pg_schema, postgres

#: The chat store's tables that an imported session has rows in.
_HISTORY = ("chats", "messages", "reactions")


def _copy(conn: psycopg.Connection[Any], source: sqlite3.Connection, table: str) -> None:
    columns = source.execute(f'PRAGMA table_info("{table}")').fetchall()
    flags = [str(row[2]).upper() == "BOOLEAN" for row in columns]
    names = sql.SQL(", ").join(sql.Identifier(row[1]) for row in columns)
    marks = sql.SQL(", ").join(sql.Placeholder() * len(columns))
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table), names, marks
    )
    rows = [
        [bool(v) if flag and v is not None else v for v, flag in zip(row, flags, strict=True)]
        for row in source.execute(f'SELECT * FROM "{table}"')
    ]
    if rows:
        conn.cursor().executemany(statement, rows)


def _whatsmeow(conn: psycopg.Connection[Any], store: sqlite3.Connection) -> None:
    """whatsmeow's tables and indexes as its SQLite store defines them, then their rows
    (parents first: the foreign keys are checked)."""
    definitions = store.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name LIKE 'whatsmeow%' "
        "AND sql IS NOT NULL ORDER BY type = 'index', rowid"
    ).fetchall()
    for kind, _name, statement in definitions:
        # The session's schema comes with an empty whatsmeow_version (pg_schema).
        prefix = f"CREATE {kind.upper()} "
        conn.execute(statement.replace(prefix, f"{prefix}IF NOT EXISTS ", 1))
    tables = [name for kind, name, _ in definitions if kind == "table"]
    parents = ("whatsmeow_device", "whatsmeow_app_state_version")
    for table in sorted(tables, key=lambda t: parents.index(t) if t in parents else 2):
        _copy(conn, store, table)


def install(url: str, session_id: str, staging: Path) -> None:
    """Create the session's schema from its staged ``whatsmeow.db`` and ``chats.db``;
    nothing is left of it on failure, and a schema already there is never touched."""
    schema = postgres.session_schema(session_id)
    with postgres.connect(url, schema, "gowa import") as conn:
        if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone():
            raise ImportRefused(
                f"the gateway's database has a schema {schema} already, which no session of "
                "its registry owns: drop it or import under another session id"
            )
        try:
            # Made as the session's role, which its worker logs in as (docs/storage.md).
            owner = postgres.session_owner(conn, schema)
            postgres.migrate(conn, schema, pg_schema.SESSION, f"session {session_id}", owner)
            store = sqlite3.connect(staging / "whatsmeow.db")
            history = (
                sqlite3.connect(staging / "chats.db") if (staging / "chats.db").exists() else None
            )
            try:
                with conn.transaction():
                    if owner is not None:
                        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(owner)))
                    _whatsmeow(conn, store)
                    if history is not None:
                        for table in _HISTORY:
                            _copy(conn, history, table)
            finally:
                store.close()
                if history is not None:
                    history.close()
        except BaseException:
            postgres.drop_session(conn, schema)
            raise


def remove(url: str, session_id: str) -> None:
    """Drop the session's schema (an import that failed later on)."""
    schema = postgres.session_schema(session_id)
    with postgres.connect(url, schema, "gowa import") as conn:
        postgres.drop_session(conn, schema)


def device_jid(url: str, session_id: str) -> str | None:
    """The device the session's PostgreSQL store is logged in as, if it has one."""
    schema = postgres.session_schema(session_id)
    with postgres.connect(url, schema, "gowa import") as conn:
        found = conn.execute("SELECT to_regclass('whatsmeow_device')").fetchone()
        if found is None or found[0] is None:
            return None
        row = conn.execute("SELECT jid FROM whatsmeow_device").fetchone()
    return row[0] if row else None
