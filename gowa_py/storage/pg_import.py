"""A session's SQLite stores (an unpacked session archive) copied into its PostgreSQL
schema, so a session moves from a SQLite gateway to one on PostgreSQL.

The gowa tables are made by the session's own migrations (``pg_schema.SESSION``).
whatsmeow's tables are made as whatsmeow has them in the file: its upgrade scripts are
written for PostgreSQL and SQLite alike, so the file's columns, types, keys, indexes and
foreign keys are those whatsmeow makes in PostgreSQL. The DDL is not taken from the file
as text (the archive is not trusted): it is rebuilt from SQLite's description of each
table, every name checked and every type and default one of a short list, and quoted by
psycopg. Rows go in with ``COPY``, converted to the PostgreSQL column's type. All of it
is one transaction: a failure leaves no schema behind.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from gowa_py.errors import GowaError
from gowa_py.protocol import ErrorCode
from gowa_py.storage import pg_schema, postgres, sqlitefile

#: The tables of ``chats.db`` (made by the session's migrations), in an order that needs
#: no foreign key first.
CHATS_TABLES = (
    "chats",
    "messages",
    "reactions",
    "events",
    "event_log",
    "lost_suspects",
    "webhook_deliveries",
)
NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_TYPES = {
    "text": "TEXT",
    "integer": "INTEGER",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "bytea": "BYTEA",
    "blob": "BYTEA",
    "boolean": "BOOLEAN",
    "uuid": "UUID",
    "real": "DOUBLE PRECISION",
    "double precision": "DOUBLE PRECISION",
}
DEFAULT = re.compile(r"-?[0-9]+|true|false|''|null", re.IGNORECASE)
_ACTIONS = {"CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION"}


def _refuse(message: str) -> GowaError:
    return GowaError(message, code=ErrorCode.ARCHIVE_INVALID)


def _name(value: object) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise _refuse(f"whatsmeow.db in the archive has an unexpected name: {value!r}")
    return value


@contextmanager
def _sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlitefile.read_only(path)
    try:
        yield conn
    finally:
        conn.close()


def _pragma(src: sqlite3.Connection, pragma: str, name: str) -> list[Any]:
    return src.execute(f'PRAGMA {pragma}("{_name(name)}")').fetchall()


def _create(conn: psycopg.Connection[Any], src: sqlite3.Connection, table: str) -> None:
    columns, keys = [], []
    for _cid, name, declared, notnull, default, pk in _pragma(src, "table_info", table):
        kind = _TYPES.get(str(declared).strip().lower())
        if kind is None:
            raise _refuse(f"whatsmeow.db in the archive: {table}.{name} has type {declared!r}")
        column = sql.SQL("{} {}").format(sql.Identifier(_name(name)), sql.SQL(kind))
        if notnull:
            column = sql.SQL("{} NOT NULL").format(column)
        if default is not None:
            if not DEFAULT.fullmatch(str(default)):
                raise _refuse(f"whatsmeow.db in the archive: {table}.{name} default {default!r}")
            column = sql.SQL("{} DEFAULT {}").format(column, sql.SQL(str(default)))
        columns.append(column)
        if pk:
            keys.append((pk, name))
    if keys:
        names = [sql.Identifier(name) for _, name in sorted(keys)]
        columns.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(names)))
    conn.execute(
        sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(table), sql.SQL(", ").join(columns))
    )


def _indexes(conn: psycopg.Connection[Any], src: sqlite3.Connection, table: str) -> None:
    for _seq, name, unique, origin, partial in _pragma(src, "index_list", table):
        if origin == "pk" or partial:
            continue
        columns = [row[2] for row in src.execute(f'PRAGMA index_info("{_name(name)}")')]
        statement = sql.SQL("CREATE {}INDEX {} ON {} ({})").format(
            sql.SQL("UNIQUE " if unique else ""),
            sql.Identifier(name) if origin == "c" else sql.SQL(""),
            sql.Identifier(table),
            sql.SQL(", ").join(sql.Identifier(_name(column)) for column in columns),
        )
        conn.execute(statement)


def _foreign_keys(conn: psycopg.Connection[Any], src: sqlite3.Connection, table: str) -> None:
    keys: dict[int, list[Any]] = {}
    for row in _pragma(src, "foreign_key_list", table):
        keys.setdefault(row[0], []).append(row)
    for rows in keys.values():
        target, on_update, on_delete = _name(rows[0][2]), rows[0][5], rows[0][6]
        if on_update not in _ACTIONS or on_delete not in _ACTIONS:
            raise _refuse(f"whatsmeow.db in the archive: {table} has an unexpected foreign key")
        local = sql.SQL(", ").join(sql.Identifier(_name(row[3])) for row in rows)
        remote = [row[4] for row in rows]
        referenced = (
            sql.SQL(" ({})").format(sql.SQL(", ").join(sql.Identifier(_name(c)) for c in remote))
            if all(remote)
            else sql.SQL("")
        )
        conn.execute(
            sql.SQL(
                "ALTER TABLE {} ADD FOREIGN KEY ({}) REFERENCES {}{} ON UPDATE {} ON DELETE {}"
            ).format(
                sql.Identifier(table),
                local,
                sql.Identifier(target),
                referenced,
                sql.SQL(on_update),
                sql.SQL(on_delete),
            )
        )


def _converter(kind: str) -> Callable[[Any], Any]:
    """SQLite's value as the PostgreSQL column's type wants it."""

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if kind == "boolean":
            return bool(value)
        if kind == "bytea":
            return value.encode() if isinstance(value, str) else bytes(value)
        if kind == "uuid":
            return uuid.UUID(bytes=value) if isinstance(value, bytes) else uuid.UUID(str(value))
        if kind == "text":
            return value.decode() if isinstance(value, bytes) else str(value)
        if kind in ("integer", "bigint", "smallint"):
            return int(value)
        if kind in ("double precision", "real"):
            return float(value)
        return value

    return convert


def _copy(conn: psycopg.Connection[Any], src: sqlite3.Connection, table: str) -> int:
    """Copy the rows of ``table`` in the columns both sides have; returns how many."""
    present = src.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [table]
    ).fetchone()
    if present is None:
        return 0
    kinds = dict(
        conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            [table],
        ).fetchall()
    )
    names = [_name(row[1]) for row in _pragma(src, "table_info", table) if row[1] in kinds]
    converters = [_converter(kinds[name]) for name in names]
    columns = sql.SQL(", ").join(sql.Identifier(name) for name in names)
    select = "SELECT " + ", ".join(f'"{name}"' for name in names) + f' FROM "{table}"'
    count = 0
    with conn.cursor().copy(
        sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), columns)
    ) as copy:
        for row in src.execute(select):
            copy.write_row([convert(value) for convert, value in zip(converters, row, strict=True)])
            count += 1
    return count


def import_session(
    conn: psycopg.Connection[Any], session_id: str, folder: Path, owner: str | None = None
) -> None:
    """Make the session's schema from the ``whatsmeow.db`` and ``chats.db`` in
    ``folder``; refused when the schema exists (the id is taken). With ``owner`` (the
    session's role), everything made belongs to that role, as the worker logs in as it."""
    schema = postgres.session_schema(session_id)
    with conn.transaction():
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema])
        if found.fetchone() is not None:
            raise GowaError(f"session {session_id!r} already exists", code=ErrorCode.SESSION_EXISTS)
        postgres.migrate(conn, schema, pg_schema.SESSION, f"session {session_id}", owner)
        if owner is not None:
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(owner)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        store = folder / "whatsmeow.db"
        if store.exists():
            with _sqlite(store) as src:
                tables = [
                    _name(row[0])
                    for row in src.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table' "
                        "AND name LIKE 'whatsmeow\\_%' ESCAPE '\\' ORDER BY name"
                    )
                ]
                for table in tables:
                    if table != "whatsmeow_version":
                        _create(conn, src, table)
                conn.execute("DELETE FROM whatsmeow_version")
                for table in tables:
                    _copy(conn, src, table)
                for table in tables:
                    _indexes(conn, src, table)
                    _foreign_keys(conn, src, table)
        chats = folder / "chats.db"
        if chats.exists():
            with _sqlite(chats) as src:
                for table in CHATS_TABLES:
                    _copy(conn, src, table)
