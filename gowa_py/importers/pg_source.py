"""A GoWA whatsmeow store kept in PostgreSQL (``DB_URI=postgres://...``), read into SQLite.

GoWA keeps its chat storage in SQLite always, but its whatsmeow store (and a
``DB_KEYS_URI`` store) may be PostgreSQL: the same tables, made by whatsmeow's PostgreSQL
dialect, in the connection's schema. The import copies them, in one read-only snapshot,
into an SQLite file of the same tables, columns, keys and uniqueness constraints, which
the file import then treats like any GoWA store; whatsmeow (in neonize) reads it as the
store it made itself. The source is never written unless asked to remove devices.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import psycopg

from gowa_py.importers import ImportRefused
from gowa_py.privatefile import private_sqlite

#: PostgreSQL types of whatsmeow's columns -> the SQLite types its SQLite dialect uses.
_TYPES = {
    "bytea": "bytea",
    "text": "TEXT",
    "character varying": "TEXT",
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "smallint": "INTEGER",
    "boolean": "BOOLEAN",
    "uuid": "uuid",
}


def is_postgres(uri: str) -> bool:
    return uri.split(":", 1)[0].lower() in ("postgres", "postgresql")


def _connect(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, application_name="gowa import", connect_timeout=10)
    except psycopg.Error as exc:
        raise ImportRefused(f"cannot connect to GoWA's PostgreSQL store: {exc}") from exc


def check_idle(url: str) -> None:
    """Refuse while another client (GoWA) is connected to the store's database."""
    with _connect(url) as conn:
        others = conn.execute(
            "SELECT pid, COALESCE(application_name, ''), COALESCE(client_addr::text, 'local') "
            "FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchall()
    if others:
        who = ", ".join(f"pid {pid} ({name or 'no name'}, {addr})" for pid, name, addr in others)
        raise ImportRefused(
            f"GoWA is still running: its PostgreSQL database has other connections ({who}); "
            "stop GoWA first, then import again. A login is moved, never copied while in use."
        )


def _tables(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_type = 'BASE TABLE' AND table_name LIKE 'whatsmeow%' ORDER BY table_name"
    ).fetchall()
    return [row[0] for row in rows]


def _ddl(conn: psycopg.Connection[Any], table: str) -> tuple[str, list[str]]:
    """The SQLite CREATE TABLE of a whatsmeow table, and its column names."""
    columns = conn.execute(
        "SELECT column_name, data_type, is_nullable, column_default FROM "
        "information_schema.columns WHERE table_schema = current_schema() AND table_name = %s "
        "ORDER BY ordinal_position",
        [table],
    ).fetchall()
    keys = conn.execute(
        "SELECT c.contype, array_agg(a.attname ORDER BY k.n) FROM pg_constraint c "
        "JOIN LATERAL unnest(c.conkey) WITH ORDINALITY k(attnum, n) ON true "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
        "WHERE c.conrelid = (quote_ident(current_schema()) || '.' || quote_ident(%s))::regclass "
        "AND c.contype IN ('p', 'u') GROUP BY c.oid, c.contype ORDER BY c.contype",
        [table],
    ).fetchall()
    parts = []
    for name, kind, nullable, default in columns:
        if kind not in _TYPES:
            raise ImportRefused(f"{table}.{name} has a type the import does not know ({kind})")
        part = f'"{name}" {_TYPES[kind]}'
        if nullable == "NO":
            part += " NOT NULL"
        if default is not None:
            part += f" DEFAULT {_default(default)}"
        parts.append(part)
    for kind, names in keys:
        listed = ", ".join(f'"{name}"' for name in names)
        parts.append(f"{'PRIMARY KEY' if kind == 'p' else 'UNIQUE'} ({listed})")
    return f'CREATE TABLE "{table}" ({", ".join(parts)})', [row[0] for row in columns]


def _default(expression: str) -> str:
    """A PostgreSQL column default as SQLite writes it (``''::text`` -> ``''``)."""
    value = expression.split("::", 1)[0]
    return {"false": "false", "true": "true"}.get(value, value)


def _value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def copy_to_sqlite(url: str, target: Path) -> None:
    """Copy the whatsmeow tables of the store at ``url`` into the new SQLite ``target``."""
    private_sqlite(target)
    out = sqlite3.connect(target)
    try:
        with _connect(url) as conn:
            conn.read_only = True
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with conn.transaction():
                tables = _tables(conn)
                if "whatsmeow_device" not in tables:
                    raise ImportRefused("GoWA's PostgreSQL database holds no whatsmeow store")
                with out:
                    for table in tables:
                        statement, names = _ddl(conn, table)
                        out.execute(statement)
                        marks = ", ".join("?" * len(names))
                        rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
                        out.executemany(
                            f'INSERT INTO "{table}" VALUES ({marks})',
                            [[_value(v) for v in row] for row in rows],
                        )
    finally:
        out.close()


def remove_device(url: str, jid: str) -> None:
    """Delete device ``jid``'s rows from the PostgreSQL store (``--remove-from-source``)."""
    with _connect(url) as conn, conn.transaction():
        for table in _tables(conn):
            names = {
                row[0]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE "
                    "table_schema = current_schema() AND table_name = %s",
                    [table],
                )
            }
            owner = "our_jid" if "our_jid" in names else "jid" if "jid" in names else None
            if owner and table != "whatsmeow_version":
                conn.execute(f'DELETE FROM "{table}" WHERE "{owner}" = %s', [jid])
