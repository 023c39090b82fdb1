"""What the SQL of the stores needs of a database connection, on either backend.

The registry, the webhook outbox and the worker's stores write their statements once, in
the SQL that SQLite and PostgreSQL share (``?`` placeholders, ``ON CONFLICT``,
``RETURNING``), and run them through an :class:`Sql`: a ``sqlite3.Connection`` is one as
it is, ``gowa_py.storage.postgres`` provides the PostgreSQL ones. What cannot be shared
is in a :class:`Dialect`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class Rows(Protocol):
    """A statement's result: its rows (each indexable by position and by column name)
    and how many rows it changed."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Sql(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Rows: ...
    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Rows: ...


class Connection(Sql, Protocol):
    """One connection of its own (a worker's): transactions are opened on it by hand."""

    @property
    def in_transaction(self) -> bool: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Dialect:
    """The statements that differ between the backends."""

    name: str
    #: Opens a write transaction (SQLite's takes the write lock at once, so two writers
    #: never deadlock upgrading their read locks).
    begin: str
    #: Run around an update that must not leave the old values readable in the file.
    before_scrub: tuple[str, ...]
    after_scrub: tuple[str, ...]


SQLITE = Dialect(
    name="sqlite",
    begin="BEGIN IMMEDIATE",
    # secure_delete zeroes the old record's bytes in the page, and the checkpoint moves
    # the page into the database and empties the log that held earlier versions of it.
    before_scrub=("PRAGMA secure_delete=ON",),
    after_scrub=("PRAGMA wal_checkpoint(TRUNCATE)",),
)
POSTGRESQL = Dialect(
    name="postgresql",
    begin="BEGIN",
    # Old row versions stay in the table's pages until vacuumed; see docs/storage.md.
    before_scrub=(),
    after_scrub=(),
)
