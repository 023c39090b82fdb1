"""Numbered schema migrations for a SQLite database, the version kept in ``user_version``.

A database opened by this code is brought to the latest version in one transaction: a
crash halfway leaves it at the version it had. A database whose version is higher than
the code knows was written by a newer release; it is refused rather than used, since the
newer tables may hold what this code would misread or drop.

Two processes may open the same file at once (a session's ``chats.db`` is opened by its
worker and by the gateway's webhook outbox): ``BEGIN IMMEDIATE`` lets one migrate while
the other waits, then finds the work done.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gowa_py.errors import GowaError


class SchemaTooNew(GowaError):
    """The database was written by a newer release of gowa-py than the one running."""


Conn = TypeVar("Conn")


@dataclass(frozen=True)
class Migration(Generic[Conn]):
    """One numbered step; ``apply`` runs its statements on the backend's connection."""

    version: int
    summary: str
    apply: Callable[[Conn], None]


def check_numbering(migrations: Sequence[Migration[Any]]) -> None:
    """Versions must be 1, 2, 3, ...: a gap or a repeat would skip or repeat a step."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1..n without gaps, got {versions}")


def version_of(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    """The column names of ``table`` (empty when it does not exist)."""
    return {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}


def migrate(
    conn: sqlite3.Connection, migrations: Sequence[Migration[sqlite3.Connection]], name: str
) -> int:
    """Apply the migrations ``conn``'s database lacks, in order, in one transaction, and
    store the version reached; returns it. ``name`` says which database in errors."""
    check_numbering(migrations)
    latest = len(migrations)
    if version_of(conn) == latest:  # the usual open: no write lock taken
        return latest
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = version_of(conn)
        if version > latest:
            raise SchemaTooNew(
                f"{name} has schema version {version} but this gowa-py knows only up to "
                f"{latest}: it was written by a newer release; run that release (or newer), "
                "or restore a backup made by this one"
            )
        for migration in migrations[version:]:
            migration.apply(conn)
        conn.execute(f"PRAGMA user_version = {latest}")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return latest
