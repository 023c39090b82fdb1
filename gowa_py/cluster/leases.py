"""Leases and node heartbeats in PostgreSQL: which node runs which session.

Every time is the database's clock (``now()``), the one clock all nodes share; a node
never compares its own clock with another's. A lease is claimed with one conditional
statement (its owner may renew it, anyone may take it once expired), and its ``epoch``
grows on every change of hands, so a stale owner's lease is told from the new one's.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import psycopg

from gowa_py.storage import postgres


@dataclass(frozen=True)
class NodeRow:
    """A node as the cluster sees it: ``heartbeat_age`` is seconds on the database clock."""

    id: str
    url: str
    status: str
    heartbeat: float
    heartbeat_age: float
    sessions: int
    #: Its max_sessions (0: no limit).
    capacity: int = 0
    #: The memory its workers use (PSS, bytes), as of its last heartbeat.
    memory: int = 0
    #: What its workers may use in all (bytes; 0: no limit), registered as it started.
    memory_budget: int = 0
    #: The mean PSS of its measured workers (bytes; 0: none yet), as of its last heartbeat.
    worker_memory: int = 0


@dataclass(frozen=True)
class Route:
    """The node running a session: its id, URL and seconds since its last renewal."""

    node: str
    url: str
    heartbeat_age: float


@dataclass(frozen=True)
class Owner:
    """Who holds a session's lease, and whether it is still within its term."""

    node: str
    url: str | None
    epoch: int
    live: bool


class LeaseStore:
    """The node's own connection to the cluster's tables (beside the gateway's pool, so a
    busy pool never delays a renewal). Blocking: callers run it in a thread; one
    statement at a time. ``timeout`` bounds each statement and each connection attempt
    (in whole seconds, at least libpq's 2): a node cut off from PostgreSQL retries every
    round instead of waiting minutes on an unanswered attempt."""

    def __init__(self, url: str, node_id: str, ttl: float, timeout: float) -> None:
        self.node_id = node_id
        self.ttl = ttl
        timeout_ms = max(1, int(timeout * 1000))
        connect_timeout = max(2, math.ceil(timeout))

        def connect() -> psycopg.Connection[Any]:
            conn = postgres.connect(
                url, postgres.REGISTRY_SCHEMA, f"gowa-cluster {node_id}", connect_timeout
            )
            conn.execute(f"SET statement_timeout = {timeout_ms}")
            return conn

        self._conn = postgres.PgConnection(connect)
        self._lock = threading.Lock()

    def _run(self, statement: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            cursor = self._conn.execute(statement, parameters)
            return cursor.fetchall() if cursor.description else []

    def namesake(self) -> tuple[str, float] | None:
        """The status of a node row under this node's id and seconds since its last
        heartbeat; None when there is none."""
        rows = self._run(
            "SELECT status, extract(epoch FROM now() - heartbeat) FROM nodes WHERE id = ?",
            (self.node_id,),
        )
        return (str(rows[0][0]), float(rows[0][1])) if rows else None

    def register(self, url: str, capacity: int, memory_budget: int = 0) -> None:
        """This node is up at ``url`` and takes up to ``capacity`` sessions (0: any),
        whose workers may use ``memory_budget`` bytes in all (0: any)."""
        self._run(
            "INSERT INTO nodes (id, url, status, started_at, heartbeat, capacity, "
            "memory_budget, worker_memory) VALUES (?, ?, 'up', now(), now(), ?, ?, 0) "
            "ON CONFLICT (id) DO UPDATE SET url = excluded.url, status = 'up', "
            "started_at = now(), heartbeat = now(), capacity = excluded.capacity, "
            "memory_budget = excluded.memory_budget, worker_memory = 0",
            (self.node_id, url, capacity, memory_budget),
        )

    def claim(self, session_id: str) -> int | None:
        """Take or renew the session's lease; its epoch, or None when another node holds
        it (or the session is gone)."""
        try:
            rows = self._run(
                "INSERT INTO leases AS l (session_id, owner, epoch, expires_at) "
                "VALUES (?, ?, 1, now() + make_interval(secs => ?)) "
                "ON CONFLICT (session_id) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at, epoch = l.epoch + CASE "
                "WHEN l.owner = excluded.owner AND l.expires_at > now() THEN 0 ELSE 1 END "
                "WHERE l.owner = excluded.owner OR l.expires_at <= now() RETURNING epoch",
                (session_id, self.node_id, self.ttl),
            )
        except psycopg.errors.ForeignKeyViolation:
            return None  # deleted meanwhile
        return int(rows[0][0]) if rows else None

    def renew(self, held: dict[str, int]) -> set[str]:
        """Extend the leases still ours at the epochs we hold; returns the sessions
        renewed (any other of ``held`` is lost)."""
        rows = self._run(
            "UPDATE leases SET expires_at = now() + make_interval(secs => ?) "
            "WHERE owner = ? AND session_id = ANY(?) AND expires_at > now() "
            "RETURNING session_id, epoch",
            (self.ttl, self.node_id, list(held)),
        )
        return {row[0] for row in rows if held.get(row[0]) == int(row[1])}

    def beat(self, memory: int = 0, worker_memory: int = 0) -> str:
        """The node's heartbeat, with its workers' ``memory`` and the mean of one
        (``worker_memory``); returns its status (``draining`` once asked to)."""
        rows = self._run(
            "UPDATE nodes SET heartbeat = now(), memory = ?, worker_memory = ?, status = "
            "CASE WHEN status = 'draining' THEN status ELSE 'up' END WHERE id = ? "
            "RETURNING status",
            (memory, worker_memory, self.node_id),
        )
        return str(rows[0][0]) if rows else "up"

    def drain(self, node_id: str) -> bool:
        """Ask the node to hand its sessions over to the others; False: no such node."""
        rows = self._run(
            "UPDATE nodes SET status = 'draining' WHERE id = ? RETURNING id", (node_id,)
        )
        return bool(rows)

    def release(self, session_id: str, epoch: int) -> None:
        """Give the lease up at once (the session stopped here, or could not start)."""
        self._run(
            "UPDATE leases SET expires_at = now() WHERE session_id = ? AND owner = ? AND epoch = ?",
            (session_id, self.node_id, epoch),
        )

    def leave(self) -> None:
        """This node stops: every lease it holds ends now and it is marked down."""
        self._run("UPDATE leases SET expires_at = now() WHERE owner = ?", (self.node_id,))
        self._run("UPDATE nodes SET status = 'down' WHERE id = ?", (self.node_id,))

    def orphans(self, limit: int, held: list[str]) -> list[str]:
        """Sessions meant to run that no node runs: no lease, an expired one, or one this
        node's previous run held (so a restarted node does not wait for its own leases to
        expire). Longest expired first."""
        rows = self._run(
            "SELECT s.id FROM sessions s LEFT JOIN leases l ON l.session_id = s.id "
            "WHERE s.desired = 'running' AND (l.session_id IS NULL OR l.expires_at <= now() "
            "OR (l.owner = ? AND NOT l.session_id = ANY(?))) "
            "ORDER BY l.expires_at NULLS FIRST, s.id LIMIT ?",
            (self.node_id, held, limit),
        )
        return [row[0] for row in rows]

    def owner(self, session_id: str) -> Owner | None:
        rows = self._run(
            "SELECT l.owner, n.url, l.epoch, l.expires_at > now() FROM leases l "
            "LEFT JOIN nodes n ON n.id = l.owner WHERE l.session_id = ?",
            (session_id,),
        )
        if not rows:
            return None
        node, url, epoch, live = rows[0]
        return Owner(node, url, int(epoch), bool(live))

    def owners(self) -> dict[str, Route]:
        """Every session whose lease is live, and its node."""
        rows = self._run(
            "SELECT l.session_id, l.owner, coalesce(n.url, ''), "
            "coalesce(extract(epoch FROM now() - n.heartbeat), 0) FROM leases l "
            "LEFT JOIN nodes n ON n.id = l.owner WHERE l.expires_at > now()"
        )
        return {row[0]: Route(row[1], row[2], float(row[3])) for row in rows}

    def nodes(self) -> list[NodeRow]:
        rows = self._run(
            "SELECT n.id, n.url, n.status, extract(epoch FROM n.heartbeat), "
            "extract(epoch FROM now() - n.heartbeat), "
            "(SELECT count(*) FROM leases l WHERE l.owner = n.id AND l.expires_at > now()), "
            "n.capacity, n.memory, n.memory_budget, n.worker_memory FROM nodes n ORDER BY n.id"
        )
        return [
            NodeRow(row[0], row[1], row[2], float(row[3]), float(row[4]), *map(int, row[5:]))
            for row in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
