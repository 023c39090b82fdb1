"""The gateway's registry: sessions, desired state, transitions, metrics.

It is what lets a restarted gateway bring back every session that was running, and what
the dashboard's charts read after a restart. Written only by the gateway process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import msgspec

from gowa_py.errors import GowaError
from gowa_py.models import SessionConfig
from gowa_py.protocol import ErrorCode, Me, SessionState
from gowa_py.storage.sql import Sql

_SAMPLE_COLUMNS = ("ts", "session_id", "rss", "pss", "uss", "cpu")
_ROWS_PER_INSERT = 1000  # SQLite takes at most 32766 parameters per statement
#: Seconds a key id found in no node's database is remembered as unknown (a client that
#: goes on with a revoked key costs one lookup per this, not one per request).
KEY_MISS_S = 2.0
#: The most unknown key ids remembered at once (all are forgotten when more come).
KEY_MISSES = 10_000


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class SessionRecord:
    id: str
    created_at: float
    desired: str  # "running" | "stopped"
    status: SessionState
    status_at: float
    config: SessionConfig
    error: str | None = None
    me: Me | None = None
    last_activity: float | None = None
    last_event_seq: int = 0
    #: The identity of the worker's event log ``last_event_seq`` counts in (None: unknown,
    #: a registry from before logs had one).
    event_epoch: str | None = None


@dataclass(frozen=True)
class ApiKeyRecord:
    """A scoped API key: bound to ``sessions``, ``read`` or ``full`` scope. Only the
    SHA-256 of the key is kept (``digest``, hex)."""

    id: str
    name: str
    sessions: tuple[str, ...]
    scope: str
    digest: str
    created_at: float


class LeaseLost(GowaError):
    """A write of what a session's worker said was refused: another node holds the
    session's lease now (this node was frozen, cut off, or its lease taken over)."""

    code = ErrorCode.SESSION_ELSEWHERE


@dataclass(frozen=True)
class WriteFence:
    """In a cluster, what the node's worker of a session says about it (status, account,
    event cursor, activity) is written only while the node holds the session's lease at
    the epoch it claimed: a node that lost the lease (frozen, then thawed, with events
    of its dying worker still to apply) cannot overwrite what the new holder wrote.
    Holding none, it writes only while no other node holds a live one.

    ``epoch`` gives the epoch of this node's lease of a session (None: it holds none);
    ``lost`` is told of a refused write, so the node stops the session's worker."""

    node_id: str
    epoch: Callable[[str], int | None]
    lost: Callable[[str], None]


class Registry:
    """Only the gateway process writes here, so sessions are also kept in memory
    (write-through): reads, which every API request makes, never touch the database.

    The tables are made by the backend's schema module before this opens them
    (``gowa_py.storage.factory``); ``forget`` is the backend's part of deleting a session
    (PostgreSQL drops the session's schema), ``close`` releases the connection.

    ``announce`` is set where other gateways share the database (a cluster on
    PostgreSQL): it tells them what an admin changed here (``key:<id>``, a scoped key
    changed or revoked; ``session:<id>``, a session's config, or its deletion), for them
    to read it again (:meth:`reload_key`, :meth:`reload`); and a key id not in memory is looked
    up in the database, for a key made on another node works here at once."""

    def __init__(
        self,
        db: Sql,
        close: Callable[[], None],
        forget: Callable[[str], None] = lambda _session_id: None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.db = db
        self._close = close
        self._forget = forget
        self._announce = announce
        #: Key ids the database lacked, until when (monotonic): only with ``announce``.
        self._missing: dict[str, float] = {}
        #: Set in a cluster (PostgreSQL) by the node's leases; None: every write goes.
        self.fence: WriteFence | None = None
        self._sessions: dict[str, SessionRecord] = {
            row["id"]: self._record(row)
            for row in self._query("SELECT * FROM sessions ORDER BY id")
        }
        self._keys: dict[str, ApiKeyRecord] = {}
        self._load_keys()

    def _insert_rows(self, head: str, rows: list[tuple[Any, ...]], tail: str = "") -> None:
        """Insert ``rows`` with one statement per thousand: each is one commit, where
        executemany in autocommit would commit every row."""
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            marks = ", ".join(["(" + ", ".join("?" * len(chunk[0])) + ")"] * len(chunk))
            self.db.execute(
                f"{head} VALUES {marks} {tail}", [value for row in chunk for value in row]
            )

    def _query(self, statement: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(row) for row in self.db.execute(statement, parameters)]

    # -------------------------------------------------------------- sessions

    def _record(self, row: dict[str, Any]) -> SessionRecord:
        return SessionRecord(
            id=row["id"],
            created_at=row["created_at"],
            desired=row["desired"],
            status=SessionState(row["status"]),
            status_at=row["status_at"],
            config=msgspec.json.decode(row["config"], type=SessionConfig),
            error=row["error"],
            me=msgspec.json.decode(row["me"], type=Me) if row["me"] else None,
            last_activity=row["last_activity"],
            last_event_seq=row["last_event_seq"] or 0,
            event_epoch=row["event_epoch"],
        )

    def create(self, session_id: str, config: SessionConfig, desired: str) -> SessionRecord:
        now = time.time()
        row = {
            "id": session_id,
            "created_at": now,
            "desired": desired,
            "status": SessionState.STOPPED.value,
            "status_at": now,
            "error": None,
            "config": msgspec.json.encode(config).decode(),
            "me": None,
            "last_activity": None,
            "last_event_seq": 0,
            "event_epoch": None,
        }
        self.db.execute(
            f"INSERT INTO sessions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )
        self.db.execute(
            "INSERT INTO transitions (session_id, status, at) VALUES (?, ?, ?)",
            [session_id, SessionState.STOPPED.value, now],
        )
        record = self._sessions[session_id] = self._record(row)
        return record

    def get(self, session_id: str) -> SessionRecord | None:
        return self._sessions.get(session_id)

    def reload(self, session_id: str | None = None) -> None:
        """Read the session (or every one) again from the database: in a cluster the
        other nodes write sessions too (gowa_py/cluster)."""
        if session_id is None:
            rows = self._query("SELECT * FROM sessions ORDER BY id")
            self._sessions = {row["id"]: self._record(row) for row in rows}
            self._load_keys()
            return
        rows = self._query("SELECT * FROM sessions WHERE id = ?", [session_id])
        if rows:
            self._sessions[session_id] = self._record(rows[0])
        else:
            self._sessions.pop(session_id, None)

    def all(self) -> list[SessionRecord]:
        return [self._sessions[key] for key in sorted(self._sessions)]

    def _update(
        self, session_id: str, columns: dict[str, Any], fenced: bool = False, **fields: Any
    ) -> None:
        """One plain UPDATE per change (two per worker event while sessions are busy
        sending): no read of the row first. Column names are ours, never input. A
        ``fenced`` write raises :class:`LeaseLost` when refused (see :class:`WriteFence`)."""
        condition, parameters = self._fenced(session_id) if fenced else ("", [])
        assignments = ", ".join(f"{name} = ?" for name in columns)
        changed = self.db.execute(
            f"UPDATE sessions SET {assignments} WHERE id = ?{condition}",
            [*columns.values(), session_id, *parameters],
        )
        if condition and changed.rowcount == 0:
            assert self.fence is not None
            self.fence.lost(session_id)
            raise LeaseLost(f"session {session_id!r}: not written, its lease is another node's now")
        record = self._sessions.get(session_id)
        if record is not None:
            self._sessions[session_id] = replace(record, **fields)

    def _fenced(self, session_id: str) -> tuple[str, list[Any]]:
        """The condition a fenced write adds to its ``WHERE``, and its parameters. Holding
        the lease, the lease row is locked for the statement (``FOR SHARE``), so a claim
        by another node waits for the write or the write sees the claim, never both."""
        fence = self.fence
        if fence is None:
            return "", []
        epoch = fence.epoch(session_id)
        if epoch is None:
            return (
                " AND NOT EXISTS (SELECT 1 FROM leases WHERE session_id = ? AND owner <> ? "
                "AND expires_at > now())",
                [session_id, fence.node_id],
            )
        return (
            " AND EXISTS (SELECT 1 FROM leases WHERE session_id = ? AND owner = ? "
            "AND epoch = ? FOR SHARE)",
            [session_id, fence.node_id, epoch],
        )

    def delete(self, session_id: str) -> None:
        """Forget the session, and its place in scoped keys: a session created again under
        the same id must not be reachable by keys made for the old one."""
        self._sessions.pop(session_id, None)
        self.db.execute("DELETE FROM sessions WHERE id = ?", [session_id])
        self.db.execute("DELETE FROM transitions WHERE session_id = ?", [session_id])
        self.db.execute("DELETE FROM metrics WHERE session_id = ?", [session_id])
        if self._announce is not None:
            self._load_keys()  # with those made on other nodes
        changed = [k.id for k in self._keys.values() if session_id in k.sessions]
        for key_id in changed:
            key = self._keys[key_id]
            sessions = tuple(s for s in key.sessions if s != session_id)
            if not sessions:
                self._keys.pop(key_id)
                self.db.execute("DELETE FROM api_keys WHERE id = ?", [key_id])
                continue
            self.db.execute(
                "UPDATE api_keys SET sessions = ? WHERE id = ?", [json.dumps(sessions), key_id]
            )
            self._keys[key_id] = replace(key, sessions=sessions)
        self._forget(session_id)
        for key_id in changed:
            self._announce_key(key_id)
        if self._announce is not None:
            self._announce(f"session:{session_id}")

    def set_desired(self, session_id: str, desired: str, fenced: bool = False) -> None:
        """``fenced``: the change comes from the session's worker, not from a request."""
        self._update(session_id, {"desired": desired}, fenced, desired=desired)

    def set_config(self, session_id: str, config: SessionConfig) -> None:
        self._update(session_id, {"config": msgspec.json.encode(config).decode()}, config=config)
        if self._announce is not None:
            self._announce(f"session:{session_id}")

    def set_status(
        self,
        session_id: str,
        status: SessionState,
        error: str | None = None,
        at: float | None = None,
    ) -> None:
        at = time.time() if at is None else at
        self._update(
            session_id,
            {"status": status.value, "status_at": at, "error": error},
            True,
            status=status,
            status_at=at,
            error=error,
        )
        self.db.execute(
            "INSERT INTO transitions (session_id, status, at, error) VALUES (?, ?, ?, ?)",
            [session_id, status.value, at, error],
        )

    def set_me(self, session_id: str, me: Me | None) -> None:
        value = msgspec.json.encode(me).decode() if me is not None else None
        self._update(session_id, {"me": value}, True, me=me)

    def set_event_seq(self, session_id: str, seq: int, activity: float | None = None) -> None:
        """Mark events up to ``seq`` applied and, for a message event, the activity with it
        (one write per event instead of two)."""
        if activity is None:
            self._update(session_id, {"last_event_seq": seq}, True, last_event_seq=seq)
        else:
            self._update(
                session_id,
                {"last_event_seq": seq, "last_activity": activity},
                True,
                last_event_seq=seq,
                last_activity=activity,
            )

    def set_event_log(self, session_id: str, epoch: str, seq: int) -> None:
        """Follow another event log (a new or rewound ``chats.db``) from ``seq`` on."""
        self._update(
            session_id,
            {"event_epoch": epoch, "last_event_seq": seq},
            True,
            event_epoch=epoch,
            last_event_seq=seq,
        )

    def transitions(self, session_id: str, limit: int = 100) -> list[dict[str, Any]]:
        return self._query(
            "SELECT status, at, error FROM transitions WHERE session_id = ? "
            "ORDER BY id DESC LIMIT ?",
            [session_id, limit],
        )

    # ----------------------------------------------------------- scoped keys

    def _key_record(self, row: dict[str, Any]) -> ApiKeyRecord:
        return ApiKeyRecord(
            id=row["id"],
            name=row["name"],
            sessions=tuple(json.loads(row["sessions"])),
            scope=row["scope"],
            digest=row["digest"],
            created_at=row["created_at"],
        )

    def _load_keys(self) -> None:
        rows = self._query("SELECT * FROM api_keys ORDER BY created_at")
        self._keys = {row["id"]: self._key_record(row) for row in rows}

    def _announce_key(self, key_id: str) -> None:
        if self._announce is not None:
            self._announce(f"key:{key_id}")

    def add_key(self, key: ApiKeyRecord) -> None:
        self.db.execute(
            "INSERT INTO api_keys (id, name, sessions, scope, digest, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [key.id, key.name, json.dumps(key.sessions), key.scope, key.digest, key.created_at],
        )
        self._keys[key.id] = key
        self._missing.pop(key.id, None)

    def get_key(self, key_id: str) -> ApiKeyRecord | None:
        """The key, from memory; shared with other nodes, a key not in memory is looked
        up in the database (an id found in none is remembered for ``KEY_MISS_S``)."""
        found = self._keys.get(key_id)
        if found is not None or self._announce is None:
            return found
        until = self._missing.get(key_id)
        if until is not None and time.monotonic() < until:
            return None
        return self.reload_key(key_id)

    def reload_key(self, key_id: str) -> ApiKeyRecord | None:
        """Read the key again from the database (another node made, changed or revoked
        it); None: there is no such key any more."""
        rows = self._query("SELECT * FROM api_keys WHERE id = ?", [key_id])
        if not rows:
            self._keys.pop(key_id, None)
            if len(self._missing) >= KEY_MISSES:
                self._missing.clear()
            self._missing[key_id] = time.monotonic() + KEY_MISS_S
            return None
        self._missing.pop(key_id, None)
        record = self._keys[key_id] = self._key_record(rows[0])
        return record

    def keys(self) -> list[ApiKeyRecord]:
        if self._announce is not None:
            self._load_keys()  # with those made on other nodes
        return list(self._keys.values())

    def delete_key(self, key_id: str) -> bool:
        """Revoke the key (on every node: see ``announce``); False: there is none."""
        self._keys.pop(key_id, None)
        if self.db.execute("DELETE FROM api_keys WHERE id = ?", [key_id]).rowcount == 0:
            return False
        self._announce_key(key_id)
        return True

    # --------------------------------------------------------------- metrics

    def add_samples(self, samples: list[dict[str, Any]]) -> None:
        if samples:
            self._insert_rows(
                "INSERT INTO metrics (ts, session_id, rss, pss, uss, cpu)",
                [tuple(s.get(c) for c in _SAMPLE_COLUMNS) for s in samples],
            )

    def samples_since(self, since: float) -> list[dict[str, Any]]:
        return self._query(
            "SELECT ts, session_id, rss, pss, uss, cpu FROM metrics WHERE ts >= ? ORDER BY ts",
            [since],
        )

    def prune_samples(self, older_than: float) -> None:
        self.db.execute("DELETE FROM metrics WHERE ts < ?", [older_than])

    def add_message_counts(self, counts: dict[tuple[int, str], tuple[int, int]]) -> None:
        """Add ``{(hour, session_id): (received, sent)}`` to the hourly message counters."""
        self._insert_rows(
            "INSERT INTO message_counts (hour, session_id, received, sent)",
            [(h, s, r, t) for (h, s), (r, t) in counts.items()],
            "ON CONFLICT (hour, session_id) DO UPDATE SET "
            "received = message_counts.received + excluded.received, "
            "sent = message_counts.sent + excluded.sent",
        )

    def message_counts_since(self, hour: int) -> list[dict[str, Any]]:
        return self._query(
            "SELECT hour, session_id, received, sent FROM message_counts "
            "WHERE hour >= ? ORDER BY hour",
            [hour],
        )

    def add_connected_point(self, ts: float, connected: int, sessions: int) -> None:
        self.db.execute(
            "INSERT INTO connected_history (ts, connected, sessions) VALUES (?, ?, ?)",
            [ts, connected, sessions],
        )

    def connected_since(self, since: float) -> list[dict[str, Any]]:
        """Points from ``since`` on, led by the last one before it (the value at ``since``)."""
        return self._query(
            "SELECT ts, connected, sessions FROM (SELECT * FROM connected_history "
            "WHERE ts < ? ORDER BY ts DESC LIMIT 1) AS before UNION ALL "
            "SELECT ts, connected, sessions FROM connected_history WHERE ts >= ? ORDER BY ts",
            [since, since],
        )

    def prune_dashboard_history(self, older_than: float) -> None:
        self.db.execute("DELETE FROM message_counts WHERE hour < ?", [int(older_than // 3600)])
        self.db.execute("DELETE FROM connected_history WHERE ts < ?", [older_than])

    def close(self) -> None:
        self._close()
