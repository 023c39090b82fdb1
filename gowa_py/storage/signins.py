"""The dashboard's sign-ins in PostgreSQL, shared by a cluster's nodes.

Behind a load balancer a browser's requests reach any node: a cookie issued by one node
must be honoured by every other, and signing out on one must sign the cookie out on all
of them. On SQLite (one gateway) sign-ins stay in the gateway's memory
(``gowa_py.gateway.websessions``). Only the SHA-256 of a cookie's token is stored, as in
memory, so reading the table hands out no live cookie. Expiry is the database's clock,
the one every node shares.
"""

from __future__ import annotations

from gowa_py.storage.sql import Sql


class SharedSignIns:
    """Sign-ins as rows of ``web_sessions`` in the registry's schema."""

    def __init__(self, db: Sql) -> None:
        self._db = db

    def add(self, digest: str, user: str, csrf: str, ttl: float) -> float:
        """Store a sign-in valid for ``ttl`` seconds; returns its expiry (Unix time).
        Expired ones are removed on the way."""
        self._db.execute("DELETE FROM web_sessions WHERE expires_at <= now()")
        row = self._db.execute(
            "INSERT INTO web_sessions (digest, username, csrf, expires_at) "
            "VALUES (?, ?, ?, now() + make_interval(secs => ?)) "
            "RETURNING extract(epoch FROM expires_at)",
            [digest, user, csrf, ttl],
        ).fetchone()
        return float(row[0])

    def find(self, digest: str) -> tuple[str, str, float] | None:
        """The live sign-in's user, CSRF token and expiry (Unix time); None when there is
        none, or it has expired."""
        row = self._db.execute(
            "SELECT username, csrf, extract(epoch FROM expires_at) FROM web_sessions "
            "WHERE digest = ? AND expires_at > now()",
            [digest],
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), float(row[2]))

    def drop(self, digest: str) -> None:
        """Sign out, on every node."""
        self._db.execute("DELETE FROM web_sessions WHERE digest = ?", [digest])
