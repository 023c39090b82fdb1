"""SQLite persistence of sandbox newsletters (channels): metadata, followers with their
role and mute state, and the posted messages with their server ids (tables in
``sim.db``)."""

from __future__ import annotations

import secrets
import sqlite3
import time
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS newsletters (
    nid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    invite TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS newsletter_followers (
    nid TEXT NOT NULL REFERENCES newsletters(nid) ON DELETE CASCADE,
    phone TEXT NOT NULL REFERENCES phones(phone) ON DELETE CASCADE,
    role TEXT NOT NULL,
    muted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (nid, phone)
);
CREATE TABLE IF NOT EXISTS newsletter_messages (
    nid TEXT NOT NULL REFERENCES newsletters(nid) ON DELETE CASCADE,
    server_id INTEGER NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    t INTEGER NOT NULL,
    plaintext BLOB NOT NULL,
    PRIMARY KEY (nid, server_id)
);
"""

NEWSLETTER_ID_PREFIX = "120363"


@dataclass(frozen=True)
class Newsletter:
    nid: str
    name: str
    description: str
    invite: str
    created_at: int


@dataclass(frozen=True)
class Post:
    server_id: int
    id: str
    type: str
    t: int
    plaintext: bytes


class NewsletterStore:
    """Newsletter tables on the sandbox's database connection (event loop thread only)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(SCHEMA)

    def create(self, name: str, description: str, owner: str) -> Newsletter:
        nid = NEWSLETTER_ID_PREFIX + "".join(secrets.choice("0123456789") for _ in range(12))
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO newsletters (nid, name, description, invite, created_at)"
                " VALUES (?,?,?,?,?)",
                (nid, name, description, secrets.token_urlsafe(16)[:22], int(time.time())),
            )
            self.db.execute(
                "INSERT INTO newsletter_followers (nid, phone, role) VALUES (?,?,?)",
                (nid, owner, "owner"),
            )
        found = self.newsletter(nid)
        assert found is not None
        return found

    def newsletter(self, nid: str) -> Newsletter | None:
        row = self.db.execute(
            "SELECT nid, name, description, invite, created_at FROM newsletters WHERE nid = ?",
            (nid,),
        ).fetchone()
        return Newsletter(*row) if row else None

    def by_invite(self, code: str) -> Newsletter | None:
        row = self.db.execute("SELECT nid FROM newsletters WHERE invite = ?", (code,)).fetchone()
        return self.newsletter(row[0]) if row else None

    def follow(self, nid: str, phone: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO newsletter_followers (nid, phone, role) VALUES (?,?,?)",
            (nid, phone, "subscriber"),
        )

    def unfollow(self, nid: str, phone: str) -> None:
        self.db.execute(
            "DELETE FROM newsletter_followers WHERE nid = ? AND phone = ? AND role != 'owner'",
            (nid, phone),
        )

    def set_muted(self, nid: str, phone: str, muted: bool) -> None:
        self.db.execute(
            "UPDATE newsletter_followers SET muted = ? WHERE nid = ? AND phone = ?",
            (int(muted), nid, phone),
        )

    def viewer(self, nid: str, phone: str) -> tuple[str, bool] | None:
        """The phone's (role, muted) in the newsletter, or None if it does not follow it."""
        row = self.db.execute(
            "SELECT role, muted FROM newsletter_followers WHERE nid = ? AND phone = ?",
            (nid, phone),
        ).fetchone()
        return (row[0], bool(row[1])) if row else None

    def followed(self, phone: str) -> list[str]:
        rows = self.db.execute(
            "SELECT nid FROM newsletter_followers WHERE phone = ? ORDER BY nid", (phone,)
        )
        return [row[0] for row in rows]

    def followers(self, nid: str) -> list[str]:
        rows = self.db.execute("SELECT phone FROM newsletter_followers WHERE nid = ?", (nid,))
        return [row[0] for row in rows]

    def post(self, nid: str, message_id: str, kind: str, plaintext: bytes) -> Post:
        row = self.db.execute(
            "SELECT COALESCE(MAX(server_id), 99) + 1 FROM newsletter_messages WHERE nid = ?",
            (nid,),
        ).fetchone()
        post = Post(row[0], message_id, kind, int(time.time()), plaintext)
        self.db.execute(
            "INSERT INTO newsletter_messages (nid, server_id, id, type, t, plaintext)"
            " VALUES (?,?,?,?,?,?)",
            (nid, post.server_id, post.id, post.type, post.t, post.plaintext),
        )
        return post

    def posts(self, nid: str, count: int, before: int = 0) -> list[Post]:
        """The latest ``count`` posts (older than ``before`` if given), oldest first."""
        rows = self.db.execute(
            "SELECT server_id, id, type, t, plaintext FROM newsletter_messages"
            " WHERE nid = ? AND (? = 0 OR server_id < ?) ORDER BY server_id DESC LIMIT ?",
            (nid, before, before, count),
        ).fetchall()
        return [Post(r[0], r[1], r[2], r[3], bytes(r[4])) for r in reversed(rows)]
