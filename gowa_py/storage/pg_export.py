"""A session's PostgreSQL schema written out as the SQLite stores a session archive holds
(``whatsmeow.db``, ``chats.db``): the reverse of ``pg_import``, so a session moves from a
gateway on PostgreSQL to any other.

Everything is read in one ``REPEATABLE READ`` transaction, one snapshot. ``chats.db`` is
made by its own migrations; whatsmeow's tables are rebuilt from PostgreSQL's catalog
(columns, types, primary and foreign keys, indexes), as whatsmeow's upgrades make them
for SQLite, with the same ``whatsmeow_version``, so whatsmeow opens the file as its own.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from gowa_py.storage import chats_schema, postgres
from gowa_py.storage.pg_import import CHATS_TABLES, DEFAULT, NAME

#: PostgreSQL's type, as whatsmeow declares it for SQLite.
_TYPES = {
    "text": "TEXT",
    "integer": "INTEGER",
    "smallint": "INTEGER",
    "bigint": "BIGINT",
    "bytea": "bytea",
    "boolean": "BOOLEAN",
    "uuid": "uuid",
    "double precision": "REAL",
    "real": "REAL",
}
_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def _ident(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(f"unexpected name in the session's schema: {name!r}")
    return f'"{name}"'


def _value(value: Any) -> Any:
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _rows(conn: psycopg.Connection[Any], dst: sqlite3.Connection, table: str) -> None:
    """Copy ``table``'s rows in the columns both sides have."""
    wanted = {row[1] for row in dst.execute(f"PRAGMA table_info({_ident(table)})")}
    found = conn.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
        [table],
    ).fetchall()
    names = [row[0] for row in found if row[0] in wanted]
    if not names:
        return
    select = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.Identifier(name) for name in names), sql.Identifier(table)
    )
    insert = (
        f"INSERT INTO {_ident(table)} ({', '.join(_ident(n) for n in names)}) "
        f"VALUES ({', '.join('?' for _ in names)})"
    )
    with conn.cursor(name=f"export_{table}") as cursor:
        cursor.execute(select)
        while batch := cursor.fetchmany(1000):
            dst.executemany(insert, [[_value(v) for v in row] for row in batch])


def _columns(conn: psycopg.Connection[Any], table: str, numbers: list[int]) -> list[str]:
    names = dict(
        conn.execute(
            "SELECT attnum, attname FROM pg_attribute WHERE attrelid = %s::regclass",
            [table],
        ).fetchall()
    )
    return [names[number] for number in numbers]


def _create(conn: psycopg.Connection[Any], dst: sqlite3.Connection, table: str) -> None:
    parts = []
    for name, kind, nullable, default in conn.execute(
        "SELECT column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = %s ORDER BY ordinal_position",
        [table],
    ).fetchall():
        column = f"{_ident(name)} {_TYPES.get(kind, 'BLOB')}"
        if nullable == "NO":
            column += " NOT NULL"
        if default is not None and DEFAULT.fullmatch(default):
            column += f" DEFAULT {default}"
        parts.append(column)
    primary = conn.execute(
        "SELECT indkey::int2[] FROM pg_index WHERE indrelid = %s::regclass AND indisprimary",
        [table],
    ).fetchone()
    if primary is not None:
        keys = ", ".join(_ident(n) for n in _columns(conn, table, list(primary[0])))
        parts.append(f"PRIMARY KEY ({keys})")
    for target, local, remote, on_update, on_delete in conn.execute(
        "SELECT confrelid::regclass::text, conkey, confkey, confupdtype, confdeltype "
        "FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
        [table],
    ).fetchall():
        mine = ", ".join(_ident(n) for n in _columns(conn, table, list(local)))
        theirs = ", ".join(_ident(n) for n in _columns(conn, target, list(remote)))
        parts.append(
            f"FOREIGN KEY ({mine}) REFERENCES {_ident(target)}({theirs}) "
            f"ON DELETE {_ACTIONS[on_delete]} ON UPDATE {_ACTIONS[on_update]}"
        )
    dst.execute(f"CREATE TABLE {_ident(table)} (\n\t" + ",\n\t".join(parts) + "\n)")


def _indexes(conn: psycopg.Connection[Any], dst: sqlite3.Connection, table: str) -> None:
    for name, unique, keys in conn.execute(
        "SELECT c.relname, i.indisunique, i.indkey::int2[] FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass "
        "AND NOT i.indisprimary AND i.indpred IS NULL ORDER BY c.relname",
        [table],
    ).fetchall():
        if 0 in keys:  # an index on an expression
            continue
        columns = ", ".join(_ident(n) for n in _columns(conn, table, list(keys)))
        unique_sql = "UNIQUE " if unique else ""
        dst.execute(f"CREATE {unique_sql}INDEX {_ident(name)} ON {_ident(table)} ({columns})")


def export_session(conn: psycopg.Connection[Any], session_id: str, folder: Path) -> None:
    """Write the session's ``chats.db`` and (once it has a device) ``whatsmeow.db`` into
    ``folder``, both from one snapshot of its schema."""
    schema = postgres.session_schema(session_id)
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        chats = sqlite3.connect(folder / "chats.db", isolation_level=None)
        try:
            chats_schema.apply(chats, folder / "chats.db")
            chats.execute("BEGIN")
            for table in CHATS_TABLES:
                _rows(conn, chats, table)
            chats.execute("COMMIT")
        finally:
            chats.close()
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                "current_schema() AND table_name LIKE 'whatsmeow\\_%%' ORDER BY table_name"
            ).fetchall()
        ]
        if not conn.execute("SELECT 1 FROM whatsmeow_version").fetchone():
            return  # whatsmeow never ran: no tables of its own yet
        store = sqlite3.connect(folder / "whatsmeow.db", isolation_level=None)
        try:
            store.execute("BEGIN")
            for table in tables:
                _create(conn, store, table)
            for table in tables:
                _rows(conn, store, table)
                _indexes(conn, store, table)
            store.execute("COMMIT")
        finally:
            store.close()
