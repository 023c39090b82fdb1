"""Schema versions: databases made before versions existed migrate with their rows, a
fresh one gets the latest version, one from a newer release is refused.

The fixtures below are the DDL the code ran before the schema modules existed, copied
as it was (sqlite-utils' output for the registry, each owner's statements for chats.db):
they are what users' files hold, and must not change when the schema does.
"""

from __future__ import annotations

import ast
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from gowa_py.ids import InvalidSessionId
from gowa_py.models import SessionConfig
from gowa_py.storage import chats_schema, pg_schema, postgres, registry_schema
from gowa_py.storage.factory import sqlite_outbox, sqlite_registry
from gowa_py.storage.interfaces import OutboxStorage
from gowa_py.storage.migrations import Migration, SchemaTooNew, check_numbering, migrate
from tests.procs import ROOT, free_port
from workers.chatsdb import ChatsDb
from workers.stores import SessionStores, open_session_stores, sqlite_db

REGISTRY_BEFORE_VERSIONS = """
CREATE TABLE "sessions" (
   "id" TEXT PRIMARY KEY,
   "created_at" REAL,
   "desired" TEXT,
   "status" TEXT,
   "status_at" REAL,
   "error" TEXT,
   "config" TEXT,
   "me" TEXT,
   "last_activity" REAL,
   "last_event_seq" INTEGER,
   "event_epoch" TEXT
);
CREATE TABLE "transitions" (
   "id" INTEGER PRIMARY KEY,
   "session_id" TEXT,
   "status" TEXT,
   "at" REAL,
   "error" TEXT
);
CREATE INDEX "idx_transitions_session_id_at"
    ON "transitions" ("session_id", "at");
CREATE TABLE "metrics" (
   "ts" REAL,
   "session_id" TEXT,
   "rss" INTEGER,
   "pss" INTEGER,
   "uss" INTEGER,
   "cpu" REAL
);
CREATE INDEX "idx_metrics_ts"
    ON "metrics" ("ts");
CREATE TABLE "message_counts" (
   "hour" INTEGER,
   "session_id" TEXT,
   "received" INTEGER,
   "sent" INTEGER,
   PRIMARY KEY ("hour", "session_id")
);
CREATE TABLE "connected_history" (
   "ts" REAL,
   "connected" INTEGER,
   "sessions" INTEGER
);
CREATE INDEX "idx_connected_history_ts"
    ON "connected_history" ("ts");
CREATE TABLE "api_keys" (
   "id" TEXT PRIMARY KEY,
   "name" TEXT,
   "sessions" TEXT,
   "scope" TEXT,
   "digest" TEXT,
   "created_at" REAL
);
"""

#: The first releases' registry: no event-log identity, no dashboard history, no keys.
REGISTRY_FIRST_RELEASE = """
CREATE TABLE "sessions" (
   "id" TEXT PRIMARY KEY,
   "created_at" REAL,
   "desired" TEXT,
   "status" TEXT,
   "status_at" REAL,
   "error" TEXT,
   "config" TEXT,
   "me" TEXT,
   "last_activity" REAL,
   "last_event_seq" INTEGER
);
CREATE TABLE "transitions" (
   "id" INTEGER PRIMARY KEY,
   "session_id" TEXT,
   "status" TEXT,
   "at" REAL,
   "error" TEXT
);
CREATE INDEX "idx_transitions_session_id_at"
    ON "transitions" ("session_id", "at");
CREATE TABLE "metrics" (
   "ts" REAL,
   "session_id" TEXT,
   "rss" INTEGER,
   "pss" INTEGER,
   "uss" INTEGER,
   "cpu" REAL
);
CREATE INDEX "idx_metrics_ts"
    ON "metrics" ("ts");
"""

CHAT_STORE_BEFORE_VERSIONS = """
CREATE TABLE IF NOT EXISTS chats (
    jid TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    last_message_time REAL,
    ephemeral_expiration INTEGER NOT NULL DEFAULT 0,
    archived INTEGER NOT NULL DEFAULT 0,
    pinned INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT NOT NULL,
    chat_jid TEXT NOT NULL,
    sender_jid TEXT NOT NULL DEFAULT '',
    sender_name TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT '',
    timestamp REAL NOT NULL,
    is_from_me INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT '',
    media_type TEXT NOT NULL DEFAULT '',
    mimetype TEXT NOT NULL DEFAULT '',
    filename TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    file_length INTEGER NOT NULL DEFAULT 0,
    media_path TEXT NOT NULL DEFAULT '',
    edited INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0,
    starred INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    raw BLOB,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (chat_jid, id)
);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (chat_jid, timestamp);
CREATE INDEX IF NOT EXISTS messages_by_id ON messages (id);
CREATE TABLE IF NOT EXISTS reactions (
    chat_jid TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sender_jid TEXT NOT NULL,
    emoji TEXT NOT NULL,
    timestamp REAL NOT NULL,
    PRIMARY KEY (chat_jid, message_id, sender_jid)
);
"""

EVENT_LOG_BEFORE_VERSIONS = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    timestamp REAL NOT NULL,
    payload TEXT NOT NULL,
    dedupe TEXT UNIQUE
);
CREATE TABLE IF NOT EXISTS event_log (
    epoch TEXT NOT NULL
);
"""

#: The first releases' event log: no de-duplication key, no identity.
EVENT_LOG_FIRST_RELEASE = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    timestamp REAL NOT NULL,
    payload TEXT NOT NULL
);
"""

LOST_BEFORE_VERSIONS = """
CREATE TABLE IF NOT EXISTS lost_suspects (
    message_id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    chat TEXT NOT NULL,
    reason TEXT NOT NULL,
    seen_at REAL NOT NULL
);
"""

OUTBOX_BEFORE_VERSIONS = """
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    body BLOB NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    created_at REAL NOT NULL,
    delivered_at REAL,
    last_status INTEGER,
    last_error TEXT,
    UNIQUE (event_id, url)
);
CREATE INDEX IF NOT EXISTS webhook_due ON webhook_deliveries (status, next_attempt_at);
"""

CHATS_BEFORE_VERSIONS = (
    CHAT_STORE_BEFORE_VERSIONS
    + EVENT_LOG_BEFORE_VERSIONS
    + LOST_BEFORE_VERSIONS
    + OUTBOX_BEFORE_VERSIONS
)


def make_db(path: Path, ddl: str, rows: str = "") -> None:
    conn = sqlite3.connect(path)
    conn.executescript(ddl + rows)
    conn.commit()
    conn.close()


def schema_of(path: Path) -> list[tuple[str, str, str]]:
    """Every table's columns and every index, as SQLite reports them."""
    conn = sqlite3.connect(path)
    try:
        found = []
        for (table,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ):
            for _cid, name, kind, notnull, default, pk in conn.execute(
                f'PRAGMA table_info("{table}")'
            ):
                found.append((table, name, f"{kind} {notnull} {default} {pk}"))
            for index in conn.execute(f'PRAGMA index_list("{table}")'):
                cols = [c[2] for c in conn.execute(f'PRAGMA index_info("{index[1]}")')]
                found.append((table, f"index unique={index[2]}", ",".join(cols)))
        return sorted(found)
    finally:
        conn.close()


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def open_chats(path: Path) -> tuple[ChatsDb, SessionStores, OutboxStorage]:
    """Everything that opens ``chats.db``, the way the worker and the gateway do."""
    stores = open_session_stores(path.parent, "s1", 10_000, None)
    assert isinstance(stores.db, ChatsDb)
    return stores.db, stores, sqlite_outbox(path)


SESSION_ROWS = """
INSERT INTO sessions (id, created_at, desired, status, status_at, error, config, me,
    last_activity, last_event_seq) VALUES
    ('s1', 1700000000.0, 'running', 'CONNECTED', 1700000001.0, NULL, '{}',
     '{"jid":"1@s.whatsapp.net","push_name":"A"}', 1700000002.5, 41);
INSERT INTO transitions (session_id, status, at, error) VALUES ('s1', 'CONNECTED', 1.0, NULL);
INSERT INTO metrics VALUES (1700000000.0, 's1', 100, 90, 80, 0.5);
"""


def test_registry_made_before_versions_keeps_its_rows(tmp_path):
    path = tmp_path / "gowa.db"
    make_db(
        path,
        REGISTRY_BEFORE_VERSIONS,
        SESSION_ROWS
        + "UPDATE sessions SET event_epoch = 'e1';"
        + "INSERT INTO api_keys VALUES ('k1', 'ci', '[\"s1\"]', 'read', 'ab12', 5.0);"
        + "INSERT INTO message_counts VALUES (472222, 's1', 3, 4);",
    )
    registry = sqlite_registry(path)
    record = registry.get("s1")
    assert record is not None
    assert (record.event_epoch, record.last_event_seq, record.last_activity) == (
        "e1",
        41,
        1700000002.5,
    )
    assert record.me is not None and record.me.push_name == "A"
    key = registry.get_key("k1")
    assert key is not None and (key.sessions, key.scope) == (("s1",), "read")
    assert registry.samples_since(0)[0]["rss"] == 100
    assert registry.message_counts_since(0) == [
        {"hour": 472222, "session_id": "s1", "received": 3, "sent": 4}
    ]
    assert [t["status"] for t in registry.transitions("s1")] == ["CONNECTED"]
    registry.close()
    assert user_version(path) == len(registry_schema.MIGRATIONS)

    fresh = tmp_path / "fresh.db"
    sqlite_registry(fresh).close()
    assert schema_of(path) == schema_of(fresh)


def test_registry_of_the_first_releases_gains_what_it_lacks(tmp_path):
    path = tmp_path / "gowa.db"
    make_db(path, REGISTRY_FIRST_RELEASE, SESSION_ROWS)
    registry = sqlite_registry(path)
    record = registry.get("s1")
    assert record is not None and (record.event_epoch, record.last_event_seq) == (None, 41)
    registry.set_event_log("s1", "e2", 3)
    registry.add_message_counts({(10, "s1"): (1, 2)})
    registry.add_connected_point(1.0, 1, 1)
    registry.create("s2", SessionConfig(), "stopped")
    registry.close()
    again = sqlite_registry(path)
    record = again.get("s1")
    assert record is not None and (record.event_epoch, record.last_event_seq) == ("e2", 3)
    assert again.get("s2") is not None
    again.close()
    fresh = tmp_path / "fresh.db"
    sqlite_registry(fresh).close()
    assert schema_of(path) == schema_of(fresh)


CHATS_ROWS = """
INSERT INTO chats (jid, name, last_message_time, created_at, updated_at)
    VALUES ('2@s.whatsapp.net', 'Bo', 1700000000.0, 1.0, 1.0);
INSERT INTO messages (id, chat_jid, sender_jid, content, timestamp, created_at, updated_at)
    VALUES ('M1', '2@s.whatsapp.net', '2@s.whatsapp.net', 'hello', 1700000000.0, 1.0, 1.0);
INSERT INTO reactions VALUES ('2@s.whatsapp.net', 'M1', '1@s.whatsapp.net', 'x', 2.0);
INSERT INTO lost_suspects VALUES ('M9', '2@s.whatsapp.net', '2@s.whatsapp.net', 'old', 3.0);
INSERT INTO webhook_deliveries (id, event_id, event, url, secret, body, status,
    next_attempt_at, created_at) VALUES ('d1', 'ev1', 'message', 'https://h.example/x', '',
    X'7b7d', 'pending', 10.0, 9.0);
"""


def test_chats_db_made_before_versions_keeps_its_rows(tmp_path):
    path = tmp_path / "chats.db"
    make_db(
        path,
        CHATS_BEFORE_VERSIONS,
        CHATS_ROWS
        + "INSERT INTO event_log VALUES ('epoch1');"
        + "INSERT INTO events (id, name, timestamp, payload, dedupe) "
        "VALUES ('ev1', 'message', 1.0, '{\"a\":1}', 'message:2@s.whatsapp.net:M1');",
    )
    db, stores, outbox = open_chats(path)
    events, store = stores.events, stores.chats
    assert events.identity().epoch == "epoch1" and events.start_seq == 1
    assert [(e.id, e.payload) for e in events.since(0, 10)] == [("ev1", {"a": 1})]
    assert events.append("message", {}, dedupe="message:2@s.whatsapp.net:M1") is None
    message = store.message("M1")
    assert message is not None and message["content"] == "hello"
    delivery = outbox.get("d1")
    assert delivery is not None and delivery.body == b"{}"
    suspects = db.connection.execute("SELECT message_id FROM lost_suspects").fetchall()
    assert [row[0] for row in suspects] == ["M9"]
    outbox.close()
    db.close()
    assert user_version(path) == len(chats_schema.MIGRATIONS)

    fresh = tmp_path / "fresh" / "chats.db"
    fresh.parent.mkdir()
    db, _, outbox = open_chats(fresh)
    outbox.close()
    db.close()
    assert schema_of(path) == schema_of(fresh)


def test_event_log_of_the_first_releases_gains_its_dedupe_key(tmp_path):
    path = tmp_path / "chats.db"
    make_db(
        path,
        EVENT_LOG_FIRST_RELEASE,
        "INSERT INTO events (id, name, timestamp, payload) VALUES ('ev1', 'x', 1.0, '{}');",
    )
    db, stores, outbox = open_chats(path)
    events = stores.events
    assert [e.id for e in events.since(0, 10)] == ["ev1"]
    first = events.append("message", {}, dedupe="message:c:M2")
    assert first is not None and first.seq == 2
    assert events.append("message", {}, dedupe="message:c:M2") is None
    with pytest.raises(sqlite3.IntegrityError):  # the key is unique, as in a fresh log
        db.connection.execute(
            "INSERT INTO events (id, name, timestamp, payload, dedupe) "
            "VALUES ('other', 'x', 1.0, '{}', 'message:c:M2')"
        )
    outbox.close()
    db.close()
    assert user_version(path) == len(chats_schema.MIGRATIONS)


def test_a_fresh_database_gets_the_latest_version(tmp_path):
    sqlite_registry(tmp_path / "gowa.db").close()
    db, _, outbox = open_chats(tmp_path / "chats.db")
    outbox.close()
    db.close()
    assert user_version(tmp_path / "gowa.db") == len(registry_schema.MIGRATIONS) >= 1
    assert user_version(tmp_path / "chats.db") == len(chats_schema.MIGRATIONS) >= 1


def newer(path: Path, migrations: tuple[Migration[sqlite3.Connection], ...]) -> int:
    version = len(migrations) + 1
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()
    return version


def test_a_database_from_a_newer_release_is_refused(tmp_path):
    registry_path = tmp_path / "gowa.db"
    version = newer(registry_path, registry_schema.MIGRATIONS)
    with pytest.raises(SchemaTooNew, match=f"{registry_path} has schema version {version}"):
        sqlite_registry(registry_path)
    chats_path = tmp_path / "chats.db"
    newer(chats_path, chats_schema.MIGRATIONS)
    with pytest.raises(SchemaTooNew, match="written by a newer release"):
        sqlite_db(chats_path)
    with pytest.raises(SchemaTooNew, match="written by a newer release"):
        sqlite_outbox(chats_path)
    assert user_version(chats_path) == version  # left as it was


def test_gowa_serve_refuses_a_newer_registry_with_a_clear_message(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    version = newer(data / "gowa.db", registry_schema.MIGRATIONS)
    port = str(free_port())
    done = subprocess.run(
        [sys.executable, "-m", "gowa_py", "serve", "--data-dir", str(data), "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert f"has schema version {version}" in done.stderr
    assert "Traceback" not in done.stderr


def test_gowa_serve_names_an_unreachable_database_and_exits(tmp_path):
    port = str(free_port())
    started = time.monotonic()
    done = subprocess.run(
        [
            *(sys.executable, "-m", "gowa_py", "serve", "--data-dir", str(tmp_path / "data")),
            *("--port", port, "--database-url", f"postgresql://postgres@127.0.0.1:{free_port()}/x"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and time.monotonic() - started < 20
    assert "cannot start" in done.stderr and "Connection refused" in done.stderr
    assert "Traceback" not in done.stderr


def test_migrations_are_numbered_without_gaps():
    for migrations in (registry_schema.MIGRATIONS, chats_schema.MIGRATIONS):
        assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
        check_numbering(migrations)

    def noop(conn: sqlite3.Connection) -> None:
        pass

    with pytest.raises(ValueError, match="without gaps"):
        check_numbering((Migration(1, "a", noop), Migration(3, "b", noop)))


def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path):
    def create(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE t (a)")
        conn.execute("INSERT INTO t VALUES (1)")

    def fail(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE t ADD COLUMN b")
        raise RuntimeError("disk on fire")

    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    with pytest.raises(RuntimeError):
        migrate(conn, (Migration(1, "t", create), Migration(2, "b", fail)), "x.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
    assert migrate(conn, (Migration(1, "t", create),), "x.db") == 1
    assert conn.execute("SELECT a FROM t").fetchall() == [(1,)]
    conn.close()


CALLERS = [
    *sorted((ROOT / "gowa_py" / "gateway").rglob("*.py")),
    *sorted((ROOT / "gowa_py" / "supervisor").rglob("*.py")),
    ROOT / "gowa_py" / "webhooks" / "deliverer.py",
    ROOT / "workers" / "worker.py",
    ROOT / "workers" / "run.py",
    *sorted((ROOT / "workers" / "operations").rglob("*.py")),
]
IMPLEMENTATIONS = {"Registry", "Outbox", "ChatsDb", "ChatStore", "EventLog", "LostSuspects"}


@pytest.mark.parametrize("path", CALLERS, ids=lambda path: str(path.relative_to(ROOT)))
def test_callers_use_storage_through_its_interfaces(path):
    """The gateway, supervisor and worker logic name no storage implementation (only the
    factories do), so a second backend needs no change there."""
    tree = ast.parse(path.read_text())
    named = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert not named & IMPLEMENTATIONS


def test_two_openers_at_once_migrate_once(tmp_path):
    """The worker and the gateway's outbox may open a new chats.db at the same moment: one
    migrates, the other waits for its write lock and then finds the work done."""
    applied: list[str] = []
    started = threading.Event()

    def slow(conn: sqlite3.Connection) -> None:
        applied.append(threading.current_thread().name)
        started.set()
        time.sleep(0.3)  # the second opener arrives while this one holds the lock
        conn.execute("CREATE TABLE t (a)")

    migrations = (Migration(1, "t", slow),)
    versions: list[int] = []

    def open_and_migrate() -> None:
        conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None, timeout=10)
        versions.append(migrate(conn, migrations, "x.db"))
        conn.close()

    _race(open_and_migrate, started)
    assert applied == ["first"]
    assert versions == [1, 1]


def _race(open_and_migrate: Callable[[], None], started: threading.Event) -> None:
    """Run a first opener, then a second once the first is inside its migration."""
    first = threading.Thread(target=open_and_migrate, name="first")
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=open_and_migrate, name="second")
    second.start()
    first.join(10)
    second.join(10)


@pytest.fixture
def pg(test_database):
    """A connection to this run's PostgreSQL database; gowa's schemas dropped after."""
    conn = psycopg.connect(test_database.url, autocommit=True)
    yield conn
    conn.close()
    test_database.empty()


def test_postgresql_schemas_get_the_latest_version_once_and_refuse_a_newer_one(pg):
    for schema, migrations in (
        (postgres.REGISTRY_SCHEMA, pg_schema.REGISTRY),
        (postgres.session_schema("s1"), pg_schema.SESSION),
    ):
        assert postgres.migrate(pg, schema, migrations, schema) == len(migrations) >= 1
        assert postgres.migrate(pg, schema, migrations, schema) == len(migrations)
        version_table = f"{postgres.quoted(schema)}.schema_version"
        assert pg.execute(f"SELECT version FROM {version_table}").fetchall() == [(len(migrations),)]
        pg.execute(f"UPDATE {version_table} SET version = version + 1")
        with pytest.raises(SchemaTooNew, match="written by a newer release"):
            postgres.migrate(pg, schema, migrations, schema)
    check_numbering(pg_schema.REGISTRY)
    check_numbering(pg_schema.SESSION)


def test_a_failing_postgresql_migration_leaves_no_schema(pg):
    def create(conn: psycopg.Connection) -> None:
        conn.execute("CREATE TABLE t (a integer)")

    def fail(conn: psycopg.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("disk on fire")

    schema = postgres.session_schema("x")
    with pytest.raises(RuntimeError):
        postgres.migrate(pg, schema, (Migration(1, "t", create), Migration(2, "b", fail)), "x")
    assert pg.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchall() == []
    assert postgres.migrate(pg, schema, (Migration(1, "t", create),), "x") == 1


def test_two_postgresql_openers_at_once_migrate_once(test_database, pg):
    """The worker and the gateway's outbox may open a session's schema at once."""
    applied: list[str] = []
    started = threading.Event()

    def slow(conn: psycopg.Connection) -> None:
        applied.append(threading.current_thread().name)
        started.set()
        time.sleep(0.3)
        conn.execute("CREATE TABLE t (a integer)")

    migrations = (Migration(1, "t", slow),)
    versions: list[int] = []
    schema = postgres.session_schema("two")

    def open_and_migrate() -> None:
        with psycopg.connect(test_database.url, autocommit=True) as conn:
            versions.append(postgres.migrate(conn, schema, migrations, "two"))

    _race(open_and_migrate, started)
    assert applied == ["first"]
    assert versions == [1, 1]


def test_session_schemas_are_named_within_postgresql_limits_and_checked():
    assert postgres.session_schema("Abc-1_x") == "gowa_s_Abc-1_x"
    long_id = "a" * 64
    assert postgres.session_schema(long_id).startswith("gowa_h_")
    assert len(postgres.session_schema(long_id)) == 63
    assert postgres.session_schema(long_id) != postgres.session_schema("a" * 63)
    with pytest.raises(InvalidSessionId):
        postgres.session_schema('x"; DROP SCHEMA gowa; --')
    with pytest.raises(ValueError, match="not a gowa schema"):
        postgres.quoted("public")


def test_whatsmeow_gets_the_sessions_schema_and_keeps_the_users_settings():
    url = postgres.whatsmeow_url("postgresql://u:p%40ss@127.0.0.1:5432/db?search_path=x", "S-1")
    query = parse_qs(urlsplit(url).query)
    assert query["search_path"] == ['"gowa_s_S-1"']
    assert query["sslmode"] == ["disable"] and query["application_name"] == ["gowa-whatsmeow S-1"]
    assert urlsplit(url).netloc == "u:p%40ss@127.0.0.1:5432"
    remote = postgres.whatsmeow_url("postgres://db.example/gowa?sslmode=verify-full", "s")
    assert parse_qs(urlsplit(remote).query)["sslmode"] == ["verify-full"]
    # Through PgBouncer: no search_path at login (the role's own), one round trip each.
    pooled = parse_qs(urlsplit(postgres.whatsmeow_url(url, "S-1", pooled=True)).query)
    assert "search_path" not in pooled and pooled["binary_parameters"] == ["yes"]


def test_server_options_in_the_url_are_kept_beside_the_search_path(test_database):
    url = test_database.url + "?options=-c%20statement_timeout%3D1234"
    with postgres.connect(url, postgres.session_schema("o"), "gowa-test") as conn:
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "1234ms"
        assert conn.execute("SHOW search_path").fetchone()[0] == '"gowa_s_o"'
