"""The PostgreSQL schemas, the one place their tables are made or changed.

The same tables as SQLite's ``gowa.db`` (:data:`REGISTRY`, in the schema ``gowa``) and
``chats.db`` (:data:`SESSION`, in each session's schema), in PostgreSQL's types. Their
versions are counted apart from SQLite's: each schema's ``schema_version`` table holds
the number of the last migration applied (``gowa_py.storage.postgres.migrate``).

To change a table, append a migration numbered one higher than the last, here and in the
SQLite schema module; never edit one that has shipped (docs/storage.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from gowa_py.storage.migrations import Migration


def _statements(*statements: str) -> Callable[[psycopg.Connection[Any]], None]:
    def apply(conn: psycopg.Connection[Any]) -> None:
        for statement in statements:
            conn.execute(statement)

    return apply


_REGISTRY_1 = _statements(
    """CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    created_at DOUBLE PRECISION,
    desired TEXT,
    status TEXT,
    status_at DOUBLE PRECISION,
    error TEXT,
    config TEXT,
    me TEXT,
    last_activity DOUBLE PRECISION,
    last_event_seq BIGINT,
    event_epoch TEXT
)""",
    """CREATE TABLE transitions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id TEXT,
    status TEXT,
    at DOUBLE PRECISION,
    error TEXT
)""",
    "CREATE INDEX transitions_by_session ON transitions (session_id, at)",
    """CREATE TABLE metrics (
    ts DOUBLE PRECISION,
    session_id TEXT,
    rss BIGINT,
    pss BIGINT,
    uss BIGINT,
    cpu DOUBLE PRECISION
)""",
    "CREATE INDEX metrics_by_ts ON metrics (ts)",
    """CREATE TABLE message_counts (
    hour BIGINT,
    session_id TEXT,
    received BIGINT,
    sent BIGINT,
    PRIMARY KEY (hour, session_id)
)""",
    """CREATE TABLE connected_history (
    ts DOUBLE PRECISION,
    connected INTEGER,
    sessions INTEGER
)""",
    "CREATE INDEX connected_history_by_ts ON connected_history (ts)",
    """CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT,
    sessions TEXT,
    scope TEXT,
    digest TEXT,
    created_at DOUBLE PRECISION
)""",
)

_SESSION_1 = _statements(
    """CREATE TABLE chats (
    jid TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    last_message_time DOUBLE PRECISION,
    ephemeral_expiration BIGINT NOT NULL DEFAULT 0,
    archived INTEGER NOT NULL DEFAULT 0,
    pinned INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
)""",
    """CREATE TABLE messages (
    id TEXT NOT NULL,
    chat_jid TEXT NOT NULL,
    sender_jid TEXT NOT NULL DEFAULT '',
    sender_name TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT '',
    timestamp DOUBLE PRECISION NOT NULL,
    is_from_me INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT '',
    media_type TEXT NOT NULL DEFAULT '',
    mimetype TEXT NOT NULL DEFAULT '',
    filename TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    file_length BIGINT NOT NULL DEFAULT 0,
    media_path TEXT NOT NULL DEFAULT '',
    edited INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0,
    starred INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    raw BYTEA,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (chat_jid, id)
)""",
    "CREATE INDEX messages_by_time ON messages (chat_jid, timestamp)",
    "CREATE INDEX messages_by_id ON messages (id)",
    """CREATE TABLE reactions (
    chat_jid TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sender_jid TEXT NOT NULL,
    emoji TEXT NOT NULL,
    timestamp DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (chat_jid, message_id, sender_jid)
)""",
    # The event log numbers its events itself (MAX + 1 in the writing transaction): a
    # sequence would leave a gap at every rolled-back insert, which the gateway reads as
    # a lost event.
    """CREATE TABLE events (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    timestamp DOUBLE PRECISION NOT NULL,
    payload TEXT NOT NULL,
    dedupe TEXT UNIQUE
)""",
    "CREATE TABLE event_log (epoch TEXT NOT NULL)",
    """CREATE TABLE lost_suspects (
    message_id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    chat TEXT NOT NULL,
    reason TEXT NOT NULL,
    seen_at DOUBLE PRECISION NOT NULL
)""",
    """CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    body BYTEA NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    delivered_at DOUBLE PRECISION,
    last_status INTEGER,
    last_error TEXT,
    UNIQUE (event_id, url)
)""",
    "CREATE INDEX webhook_due ON webhook_deliveries (status, next_attempt_at)",
    # whatsmeow's version table, empty (whatsmeow makes its tables from version 0). Its
    # upgrader asks information_schema whether the table exists, in every schema: once
    # one session had made it, the next one's whatsmeow believed it had one too and
    # failed reading it. Made here, it is found in the session's own schema.
    "CREATE TABLE whatsmeow_version (version INTEGER, compat INTEGER)",
)

# The cluster's nodes and session leases (gowa_py/cluster). Times are the database's
# clock (``now()``), the one clock every node shares; a lease goes with its session.
_REGISTRY_2 = _statements(
    """CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    heartbeat TIMESTAMPTZ NOT NULL
)""",
    """CREATE TABLE leases (
    session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    owner TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
)""",
    "CREATE INDEX leases_by_owner ON leases (owner)",
)

# How many sessions a node takes (its max_sessions, 0 = no limit): where new ones go.
_REGISTRY_3 = _statements("ALTER TABLE nodes ADD COLUMN capacity INTEGER NOT NULL DEFAULT 0")

# The memory its workers use (PSS, bytes), with every heartbeat.
_REGISTRY_4 = _statements("ALTER TABLE nodes ADD COLUMN memory BIGINT NOT NULL DEFAULT 0")

# Events of 8000 bytes or more, relayed to the other nodes by their id (too large for a
# NOTIFY; gowa_py/cluster/relay.py), deleted after a minute. Unlogged: they are for the
# live stream only, and a crash may lose them.
_REGISTRY_5 = _statements(
    """CREATE UNLOGGED TABLE event_relay (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    body TEXT NOT NULL
)""",
    "CREATE INDEX event_relay_by_age ON event_relay (at)",
)

# The dashboard's sign-ins, shared by every node (gowa_py/storage/signins.py): a browser
# signed in on one node is signed in on all of them, and signed out everywhere at once.
# Only the SHA-256 of the cookie's token is kept.
_REGISTRY_6 = _statements(
    """CREATE TABLE web_sessions (
    digest TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    csrf TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
)""",
    "CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at)",
)

# Each node's memory budget for its workers (bytes, 0 = no limit) and the mean PSS of
# one of them (0 = none measured yet): with capacity, where new sessions go. Rows of
# nodes that registered before stay without a limit.
_REGISTRY_7 = _statements(
    "ALTER TABLE nodes ADD COLUMN memory_budget BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE nodes ADD COLUMN worker_memory BIGINT NOT NULL DEFAULT 0",
)

REGISTRY = (
    Migration(1, "the registry's tables", _REGISTRY_1),
    Migration(2, "the cluster's nodes and session leases", _REGISTRY_2),
    Migration(3, "each node's capacity", _REGISTRY_3),
    Migration(4, "each node's worker memory", _REGISTRY_4),
    Migration(5, "events too large for a NOTIFY", _REGISTRY_5),
    Migration(6, "the dashboard's sign-ins", _REGISTRY_6),
    Migration(7, "each node's memory budget and memory per worker", _REGISTRY_7),
)
SESSION = (Migration(1, "a session's chat store, event log, suspects and outbox", _SESSION_1),)
