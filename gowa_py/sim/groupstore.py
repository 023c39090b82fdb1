"""SQLite persistence of sandbox groups: metadata, settings, members, invite codes and
join requests (tables in ``sim.db``, next to the :class:`~.store.Store` tables)."""

from __future__ import annotations

import secrets
import sqlite3
import time
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS groups (
    gid TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    creator TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS group_members (
    gid TEXT NOT NULL REFERENCES groups(gid) ON DELETE CASCADE,
    phone TEXT NOT NULL REFERENCES phones(phone) ON DELETE CASCADE,
    admin INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (gid, phone)
);
CREATE TABLE IF NOT EXISTS group_requests (
    gid TEXT NOT NULL REFERENCES groups(gid) ON DELETE CASCADE,
    phone TEXT NOT NULL REFERENCES phones(phone) ON DELETE CASCADE,
    requested_at INTEGER NOT NULL,
    PRIMARY KEY (gid, phone)
);
"""

#: Columns added to ``groups`` after its first version: (name, DDL).
SETTINGS = (
    ("subject_at", "INTEGER NOT NULL DEFAULT 0"),
    ("subject_by", "TEXT NOT NULL DEFAULT ''"),
    ("topic", "TEXT NOT NULL DEFAULT ''"),
    ("topic_id", "TEXT NOT NULL DEFAULT ''"),
    ("topic_at", "INTEGER NOT NULL DEFAULT 0"),
    ("topic_by", "TEXT NOT NULL DEFAULT ''"),
    ("locked", "INTEGER NOT NULL DEFAULT 0"),
    ("announce", "INTEGER NOT NULL DEFAULT 0"),
    ("approval", "INTEGER NOT NULL DEFAULT 0"),
    ("invite", "TEXT NOT NULL DEFAULT ''"),
)
#: Settings a handler may change with :meth:`GroupStore.update`.
MUTABLE = frozenset(name for name, _ in SETTINGS) | {"subject"}


@dataclass(frozen=True)
class Group:
    gid: str
    subject: str
    creator: str
    created_at: int
    subject_at: int
    subject_by: str
    topic: str
    topic_id: str
    topic_at: int
    topic_by: str
    locked: bool
    announce: bool
    approval: bool
    invite: str


def new_invite_code() -> str:
    """22 URL-safe characters, the length of WhatsApp's invite codes."""
    return secrets.token_urlsafe(16)[:22]


class GroupStore:
    """Group tables on the sandbox's database connection (event loop thread only)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(groups)")}
        for name, ddl in SETTINGS:
            if name not in columns:
                self.db.execute(f"ALTER TABLE groups ADD COLUMN {name} {ddl}")

    def create(self, gid: str, subject: str, creator: str, members: list[str]) -> None:
        created = int(time.time())
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO groups (gid, subject, creator, created_at, subject_at, subject_by,"
                " invite) VALUES (?,?,?,?,?,?,?)",
                (gid, subject, creator, created, created, creator, new_invite_code()),
            )
            self.db.executemany(
                "INSERT OR IGNORE INTO group_members (gid, phone, admin) VALUES (?,?,?)",
                [(gid, phone, int(phone == creator)) for phone in [creator, *members]],
            )

    def group(self, gid: str) -> Group | None:
        row = self.db.execute(
            "SELECT gid, subject, creator, created_at, "
            + ", ".join(name for name, _ in SETTINGS)
            + " FROM groups WHERE gid = ?",
            (gid,),
        ).fetchone()
        if row is None:
            return None
        values = dict(zip(row.keys(), row, strict=True))
        for flag in ("locked", "announce", "approval"):
            values[flag] = bool(values[flag])
        return Group(**values)

    def by_invite(self, code: str) -> Group | None:
        row = self.db.execute("SELECT gid FROM groups WHERE invite = ?", (code,)).fetchone()
        return self.group(row[0]) if row else None

    def update(self, gid: str, **changes: str | int | bool) -> None:
        unknown = set(changes) - MUTABLE
        if unknown:
            raise ValueError(f"not a group setting: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in changes)
        self.db.execute(
            f"UPDATE groups SET {assignments} WHERE gid = ?",
            [int(v) if isinstance(v, bool) else v for v in changes.values()] + [gid],
        )

    def of_member(self, phone: str) -> list[str]:
        rows = self.db.execute(
            "SELECT gid FROM group_members WHERE phone = ? ORDER BY gid", (phone,)
        )
        return [row[0] for row in rows]

    def members(self, gid: str) -> list[tuple[str, bool]]:
        rows = self.db.execute(
            "SELECT phone, admin FROM group_members WHERE gid = ? ORDER BY phone", (gid,)
        )
        return [(row[0], bool(row[1])) for row in rows]

    def add_members(self, gid: str, phones: list[str]) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO group_members (gid, phone) VALUES (?,?)",
            [(gid, phone) for phone in phones],
        )

    def set_admins(self, gid: str, phones: list[str], admin: bool) -> None:
        self.db.executemany(
            "UPDATE group_members SET admin = ? WHERE gid = ? AND phone = ?",
            [(int(admin), gid, phone) for phone in phones],
        )

    def remove_members(self, gid: str, phones: list[str]) -> None:
        self.db.executemany(
            "DELETE FROM group_members WHERE gid = ? AND phone = ?",
            [(gid, phone) for phone in phones],
        )

    def request(self, gid: str, phone: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO group_requests (gid, phone, requested_at) VALUES (?,?,?)",
            (gid, phone, int(time.time())),
        )

    def requests(self, gid: str) -> list[tuple[str, int]]:
        rows = self.db.execute(
            "SELECT phone, requested_at FROM group_requests WHERE gid = ? ORDER BY requested_at",
            (gid,),
        )
        return [(row[0], row[1]) for row in rows]

    def drop_requests(self, gid: str, phones: list[str]) -> None:
        self.db.executemany(
            "DELETE FROM group_requests WHERE gid = ? AND phone = ?",
            [(gid, phone) for phone in phones],
        )
