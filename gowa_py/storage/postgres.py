"""PostgreSQL connections for the stores (psycopg 3), and where each session's data lives.

The registry is in the schema ``gowa``; every session's tables (chat store, event log,
lost suspects, webhook outbox, and whatsmeow's own) in a schema of its own, named by
:func:`session_schema` and dropped with the session. A session's SQL names its tables
unqualified and runs with ``search_path`` set to its schema, as the same SQL runs in a
session's own SQLite file.

Two kinds of connection: a worker holds one (:class:`PgConnection`) for all its stores,
and the gateway a small pool (:class:`PgPool`) shared by the registry and every session's
outbox, whose statements name the outbox's schema.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import select
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from gowa_py.ids import check_session_id
from gowa_py.storage.migrations import Migration, SchemaTooNew, check_numbering

REGISTRY_SCHEMA = "gowa"
#: The channel a gateway NOTIFYs with what an admin changed in the registry, for the
#: other nodes to read it again (gowa_py/registry.py; heard in gowa_py/cluster/relay.py).
REGISTRY_CHANNEL = "gowa_registry"
_PREFIX, _HASHED, _ROLE = "gowa_s_", "gowa_h_", "gowa_r_"
_MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1
#: Seconds a gateway's statement waits for a pooled connection before it fails (the
#: server is down or every connection busy): an API request answers 503, not hang.
POOL_WAIT_S = 3.0
_ROLE_NAME = re.compile(r"^gowa_r_[0-9a-f]{32}$")
_SCHEMA_OF_SESSION = re.compile(r"^(gowa_s_[A-Za-z0-9][A-Za-z0-9_-]*|gowa_h_[0-9a-f]{56})$")

PgMigration = Migration[psycopg.Connection[Any]]


def session_schema(session_id: str) -> str:
    """The schema of a session: ``gowa_s_<id>``, or for an id too long for a PostgreSQL
    name, ``gowa_h_`` and its SHA-256 (the prefixes keep the two forms apart)."""
    check_session_id(session_id)
    if len(_PREFIX) + len(session_id) <= _MAX_IDENTIFIER:
        return _PREFIX + session_id
    return (
        _HASHED + hashlib.sha256(session_id.encode()).hexdigest()[: _MAX_IDENTIFIER - len(_HASHED)]
    )


def quoted(schema: str) -> str:
    """The schema as an SQL identifier; only names :func:`session_schema` makes (or the
    registry's) are accepted, so no other schema is ever touched."""
    if schema != REGISTRY_SCHEMA and not _SCHEMA_OF_SESSION.fullmatch(schema):
        raise ValueError(f"not a gowa schema: {schema!r}")
    return '"' + schema + '"'


def _role(role: str) -> sql.Composable:
    """A session's role as an SQL identifier; only names :func:`session_role` makes."""
    if not _ROLE_NAME.fullmatch(role):
        raise ValueError(f"not a gowa role: {role!r}")
    return sql.Identifier(role)


def whatsmeow_url(url: str, session_id: str, pooled: bool = False) -> str:
    """The URL neonize opens the session's whatsmeow store with: ``search_path`` makes
    whatsmeow's unqualified tables those of the session's schema (lib/pq passes unknown
    URL parameters to the server as session settings), and ``application_name`` names
    its connections in ``pg_stat_activity``. lib/pq requires TLS unless told otherwise,
    where libpq (psycopg) only prefers it; without an ``sslmode`` in the URL, a loopback
    server is reached without TLS, as psycopg reaches it when the server has none.

    ``pooled``: the URL is PgBouncer's in transaction mode, which refuses a
    ``search_path`` startup parameter (the role's own setting gives it instead, see
    :func:`pin_search_path`), and ``binary_parameters=yes`` makes lib/pq send each
    statement with parameters in one round trip (Parse, Bind, Execute, Sync) where it
    otherwise parses first and binds after a Sync, when PgBouncer may have handed the
    server connection (and its unnamed statement) to another client."""
    parts = urlsplit(url)
    given = dict(parse_qsl(parts.query))
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "search_path"]
    if "sslmode" not in given and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        query.append(("sslmode", "disable"))
    if "application_name" not in given:
        query.append(("application_name", f"gowa-whatsmeow {session_id}"))
    if pooled:
        query = [(k, v) for k, v in query if k != "binary_parameters"]
        query.append(("binary_parameters", "yes"))
    else:
        query.append(("search_path", quoted(session_schema(session_id))))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def session_role(database: str, schema: str) -> str:
    """The database role a session's worker logs in as. Roles are shared by every
    database of a server, so the name derives from the database's name and the schema's
    (two gateways on one server may both have a session "alice")."""
    quoted(schema)
    digest = hashlib.sha256(f"{database}\0{schema}".encode()).hexdigest()
    return _ROLE + digest[:32]


def role_url(url: str, role: str, password: str) -> str:
    """``url`` logging in as ``role`` with ``password`` instead of its own user."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


class Row(tuple[Any, ...]):
    """A row readable by position and by column name, as ``sqlite3.Row`` is."""

    names: tuple[str, ...] = ()

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self.names.index(key))
        return super().__getitem__(key)

    def keys(self) -> tuple[str, ...]:
        return self.names


def _rows(cursor: psycopg.Cursor[Any]) -> Callable[[Sequence[Any]], Row]:
    names = tuple(column.name for column in cursor.description or ())

    def make(values: Sequence[Any]) -> Row:
        row = Row(values)
        row.names = names
        return row

    return make


def _paramstyle(statement: str) -> str:
    """The stores' SQL uses ``?`` (sqlite3's style); psycopg's is ``%s``. Values always
    travel as parameters, so no ``?`` stands in a literal of a statement of ours."""
    return statement.replace("%", "%%").replace("?", "%s")


def _options(url: str, schema: str) -> str:
    """The server options of ``url`` (a ``statement_timeout``, say) and ``search_path``."""
    given = conninfo_to_dict(url).get("options") or ""
    return f"{given} -c search_path={quoted(schema)}".strip()


#: TCP keepalives on every connection :func:`connect` opens, unless the URL sets them: a
#: server that vanished without closing the connection (a network cut, a host gone) is
#: found within about idle + interval × count seconds even while nothing is sent, and
#: ``tcp_user_timeout`` bounds how long data sent to it may go unacknowledged.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 25_000,
}


def connect(
    url: str,
    schema: str,
    application_name: str,
    connect_timeout: int | None = None,
    pooled: bool = False,
) -> psycopg.Connection[Any]:
    """One connection in autocommit (transactions are explicit), its ``search_path`` the
    given schema, with :data:`KEEPALIVES`. ``connect_timeout`` (whole seconds, libpq's
    floor of 2) replaces the URL's, if any; without either, an unanswered attempt lasts
    psycopg's default 130 s.

    ``pooled``: ``url`` is PgBouncer's in transaction mode, where the next transaction
    may run on another server connection: no ``options`` startup parameter (PgBouncer
    refuses it; the login role's own ``search_path`` is the schema, see
    :func:`pin_search_path`) and no prepared statements (psycopg prepares a statement
    run five times, and the next server connection would not know it)."""
    if connect_timeout is not None:
        url = make_conninfo(url, connect_timeout=connect_timeout)
    given = conninfo_to_dict(url)
    url = make_conninfo(url, **{k: v for k, v in KEEPALIVES.items() if k not in given})
    if pooled:
        conn = psycopg.connect(
            url, autocommit=True, row_factory=_rows, application_name=application_name
        )
        conn.prepare_threshold = None
        return conn
    return psycopg.connect(
        url,
        autocommit=True,
        row_factory=_rows,
        application_name=application_name,
        options=_options(url, schema),
    )


class Fetched:
    """A result read in full, so the connection it came from can go back to the pool."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


class PgConnection:
    """One connection used by one process's stores (a :class:`~gowa_py.storage.sql.Sql`).

    A connection the server ended while it was idle (a restart, a terminated backend) is
    found so before the next statement, from the reason the server left unread in it,
    and that statement goes to a new connection: a worker's stores come back by
    themselves, and its first message after a restart is not lost to a failed ``BEGIN``.
    A connection that drops during a transaction or a statement fails that one, and the
    next opens a new connection.
    """

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]]) -> None:
        self._connect = connect
        #: The server said it ends the connection (a FATAL message while idle).
        self._ending = False
        self.connection = self._open()

    def _open(self) -> psycopg.Connection[Any]:
        connection = self._connect()
        self._ending = False
        connection.add_notice_handler(self._on_notice)
        return connection

    def _on_notice(self, diagnostic: psycopg.errors.Diagnostic) -> None:
        # libpq hands a message that comes outside a statement to the notice handler:
        # FATAL is the server's farewell, which may come a moment before the end of
        # the stream (a terminated backend leaves pg_stat_activity before its socket).
        if diagnostic.severity_nonlocalized in ("FATAL", "PANIC"):
            self._ending = True

    def _live(self) -> psycopg.Connection[Any]:
        if self.ended():
            self.reconnect()
        return self.connection

    def ended(self) -> bool:
        """Whether the connection is broken, or idle and ended by the server (its reason
        read off the socket without waiting). The caller holds the stores' lock: no
        statement is under way."""
        if not self.connection.broken and not self.in_transaction:
            self._read_farewell()
        return self.connection.broken or self._ending

    def reconnect(self) -> None:
        """Replace the connection by a new one (raises while the server does not answer)."""
        connection = self._open()
        with contextlib.suppress(psycopg.Error):
            self.connection.close()
        self.connection = connection

    def fileno(self) -> int:
        """The connection's socket, for watching it from an event loop while idle."""
        return self.connection.pgconn.socket

    def _read_farewell(self) -> None:
        """An idle connection has nothing to read unless the server is ending it: then
        read its last message and the end of the stream, which leaves it broken."""
        pgconn = self.connection.pgconn
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN)
        with contextlib.suppress(psycopg.OperationalError):
            for _ in range(2):  # the reason, then the end
                if not poller.poll(0):
                    return
                pgconn.consume_input()
                pgconn.is_busy()  # parses what came: a farewell reaches _on_notice

    def execute(self, statement: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        return self._live().execute(_paramstyle(statement), parameters)

    def executemany(
        self, statement: str, parameters: Iterable[Sequence[Any]], /
    ) -> psycopg.Cursor[Any]:
        cursor = self._live().cursor()
        cursor.executemany(_paramstyle(statement), list(parameters))
        return cursor

    @property
    def in_transaction(self) -> bool:
        return self.connection.info.transaction_status not in (
            TransactionStatus.IDLE,
            TransactionStatus.UNKNOWN,  # a broken connection: nothing left to roll back
        )

    def close(self) -> None:
        self.connection.close()


class PgPool:
    """The gateway's few connections, shared by the registry and every outbox (a
    :class:`~gowa_py.storage.sql.Sql`); their ``search_path`` is the registry's schema."""

    def __init__(self, url: str, max_size: int) -> None:
        self.url = url
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={
                "autocommit": True,
                "application_name": "gowa-gateway",
                "options": _options(url, REGISTRY_SCHEMA),
            },
            configure=_configure,
            # A pooled connection the server dropped (a restart) is replaced when taken,
            # not found broken by the statement that uses it.
            check=ConnectionPool.check_connection,
            timeout=POOL_WAIT_S,
            open=True,
            name="gowa-gateway",
        )

    def execute(self, statement: str, parameters: Sequence[Any] = (), /) -> Fetched:
        with self.pool.connection() as conn:
            cursor = conn.execute(_paramstyle(statement), parameters)
            return Fetched(cursor.fetchall() if cursor.description else [], cursor.rowcount)

    def executemany(self, statement: str, parameters: Iterable[Sequence[Any]], /) -> Fetched:
        with self.pool.connection() as conn:
            cursor = conn.cursor()
            cursor.executemany(_paramstyle(statement), list(parameters))
            return Fetched([], cursor.rowcount)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self.pool.connection() as conn:
            yield conn

    def close(self) -> None:
        self.pool.close()


def unavailable(exc: BaseException) -> bool:
    """Whether a failure (or what caused it) is the database not answering: a connection
    refused, lost or not obtained from the pool in time, rather than a bug."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, psycopg.OperationalError | PoolTimeout):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.row_factory = _rows


def migrate(
    conn: psycopg.Connection[Any],
    schema: str,
    migrations: Sequence[PgMigration],
    name: str,
    owner: str | None = None,
) -> int:
    """Create ``schema`` if needed and apply the migrations it lacks, in one transaction,
    storing the version reached in its ``schema_version`` table; returns it.

    The worker and the gateway may open a session's schema at once: a transaction-scoped
    advisory lock on the schema's name lets one migrate while the other waits. Each
    migration runs with ``search_path`` set to the schema, so its DDL names tables
    unqualified. With ``owner`` (a session's role, of which this connection's user is a
    member), the schema and everything the migrations make belong to that role.
    """
    check_numbering(migrations)
    latest = len(migrations)
    name_sql = sql.SQL(quoted(schema))
    version_table = sql.SQL("{}.schema_version").format(name_sql)
    exists = conn.execute("SELECT to_regclass(%s)", [f"{quoted(schema)}.schema_version"])
    if (exists.fetchone() or (None,))[0] is not None:
        row = conn.execute(sql.SQL("SELECT version FROM {}").format(version_table)).fetchone()
        if row is not None and row[0] == latest:  # the usual open: no lock taken
            return latest
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [schema])
        # Made only when missing: a session's role may not create schemas.
        if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone():
            authorization = (
                sql.SQL(" AUTHORIZATION {}").format(_role(owner)) if owner else sql.SQL("")
            )
            conn.execute(sql.SQL("CREATE SCHEMA {}{}").format(name_sql, authorization))
        if owner is not None:
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(_role(owner)))
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (version integer NOT NULL)").format(
                version_table
            )
        )
        row = conn.execute(sql.SQL("SELECT version FROM {}").format(version_table)).fetchone()
        version = 0 if row is None else int(row[0])
        if version > latest:
            raise SchemaTooNew(
                f"{name} has schema version {version} but this gowa-py knows only up to "
                f"{latest}: it was written by a newer release; run that release (or newer)"
            )
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(name_sql))
        for migration in migrations[version:]:
            migration.apply(conn)
        conn.execute(sql.SQL("DELETE FROM {}").format(version_table))
        conn.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(version_table), [latest])
    return latest


def drop_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Drop a session's schema and everything in it (its whatsmeow tables too)."""
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.SQL(quoted(schema))))


def can_create_roles(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    return bool(row and row[0])


def provide_role(conn: psycopg.Connection[Any], role: str, password: str | None) -> None:
    """Create the session's login role if missing, make this connection's user a member
    (so the gateway reaches the session's tables and can make them as that role), and set
    its password when one is given (a new one for each worker)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [role])
        found = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        if found is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(_role(role)))
            conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(_role(role)))
        if password is not None:
            # Only the SCRAM verifier reaches the server, so no statement log holds the
            # password (libpq hashes it here, as psql's \password does).
            verifier = conn.pgconn.encrypt_password(
                password.encode(), role.encode(), b"scram-sha-256"
            ).decode()
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(_role(role), sql.Literal(verifier))
            )


def pin_search_path(conn: psycopg.Connection[Any], role: str, schema: str) -> None:
    """Make ``schema`` the search path of every connection ``role`` opens to this
    database, so that a connection through a pooler, which cannot pass it at login,
    finds the session's tables as a direct one does."""
    conn.execute(
        sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path TO {}").format(
            _role(role), sql.Identifier(current_database(conn)), sql.SQL(quoted(schema))
        )
    )


def current_database(conn: psycopg.Connection[Any]) -> str:
    """The name of the database ``conn`` is connected to."""
    return str((conn.execute("SELECT current_database()").fetchone() or [""])[0])


def session_owner(conn: psycopg.Connection[Any], schema: str) -> str | None:
    """The role a session's schema belongs to, made if missing, for whoever makes the
    schema outside the gateway (an import); None when this user may not create roles."""
    if not can_create_roles(conn):
        return None
    role = session_role(current_database(conn), schema)
    provide_role(conn, role, None)
    return role


def drop_session(conn: psycopg.Connection[Any], schema: str) -> None:
    """Drop a session's schema and, if it has one, its role."""
    database = current_database(conn)
    drop_schema(conn, schema)
    drop_role(conn, session_role(database, schema))


def drop_role(conn: psycopg.Connection[Any], role: str) -> None:
    """Drop a session's role (its schema dropped first), ending its connections."""
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role]
    )
    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(_role(role)))
