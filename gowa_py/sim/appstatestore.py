"""SQLite persistence of app-state patches: per phone and collection, one row per version
(a table in ``sim.db``, next to the :class:`~.store.Store` tables).

The sandbox cannot read patches (their mutations are encrypted with the account's
app-state key); it only numbers them, as WhatsApp's server does, and hands them out.
"""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS app_state_patches (
    phone TEXT NOT NULL REFERENCES phones(phone) ON DELETE CASCADE,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    patch BLOB NOT NULL,
    PRIMARY KEY (phone, name, version)
);
"""


class AppStateStore:
    """App-state tables on the sandbox's database connection (event loop thread only)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(SCHEMA)

    def version(self, phone: str, name: str) -> int:
        """The collection's latest version (0 while it has no patches)."""
        row = self.db.execute(
            "SELECT MAX(version) FROM app_state_patches WHERE phone = ? AND name = ?",
            (phone, name),
        ).fetchone()
        return int(row[0] or 0)

    def add(self, phone: str, name: str, version: int, patch: bytes) -> None:
        self.db.execute(
            "INSERT INTO app_state_patches (phone, name, version, patch) VALUES (?,?,?,?)",
            (phone, name, version, patch),
        )

    def since(self, phone: str, name: str, version: int) -> list[bytes]:
        """The patches after ``version``, oldest first."""
        rows = self.db.execute(
            "SELECT patch FROM app_state_patches WHERE phone = ? AND name = ? AND version > ?"
            " ORDER BY version",
            (phone, name, version),
        )
        return [bytes(row[0]) for row in rows]
