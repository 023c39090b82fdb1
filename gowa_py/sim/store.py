"""SQLite persistence of the sandbox network (``sim.db`` in the data directory).

Everything a restarted sandbox needs to log its devices in again lives here: phones
(with the simulated primary phone's signing key and the account's LID), linked devices
(noise key, identity key, registration id, signed prekey), one-time prekeys, messages
queued for offline devices, and profile pictures; groups, newsletters and app-state
patches live in :mod:`.groupstore`, :mod:`.newsletterstore` and :mod:`.appstatestore` on
the same connection. Calls are
synchronous: the sandbox is one event loop and every statement is a few microseconds on
a local file.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from .appstatestore import AppStateStore
from .groupstore import GroupStore
from .newsletterstore import NewsletterStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS phones (
    phone TEXT PRIMARY KEY,
    push_name TEXT NOT NULL,
    lid TEXT NOT NULL UNIQUE,
    signing_seed BLOB NOT NULL,
    next_device INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    phone TEXT NOT NULL REFERENCES phones(phone) ON DELETE CASCADE,
    device INTEGER NOT NULL,
    noise_pub BLOB NOT NULL,
    identity_pub BLOB NOT NULL,
    registration_id INTEGER NOT NULL,
    skey_id INTEGER NOT NULL,
    skey_pub BLOB NOT NULL,
    skey_sig BLOB NOT NULL,
    platform TEXT NOT NULL DEFAULT '',
    unlinked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (phone, device)
);
CREATE TABLE IF NOT EXISTS prekeys (
    phone TEXT NOT NULL,
    device INTEGER NOT NULL,
    key_id INTEGER NOT NULL,
    pub BLOB NOT NULL,
    PRIMARY KEY (phone, device, key_id),
    FOREIGN KEY (phone, device) REFERENCES devices(phone, device) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    phone TEXT NOT NULL,
    device INTEGER NOT NULL,
    stanza BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    tag TEXT NOT NULL DEFAULT '',
    stanza_id TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (phone, device) REFERENCES devices(phone, device) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS pictures (
    owner TEXT PRIMARY KEY,
    picture_id TEXT NOT NULL,
    data BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class Phone:
    phone: str
    push_name: str
    lid: str
    signing_seed: bytes
    created_at: int


@dataclass(frozen=True)
class Device:
    phone: str
    device: int
    noise_pub: bytes
    identity_pub: bytes
    registration_id: int
    skey_id: int
    skey_pub: bytes
    skey_sig: bytes
    platform: str
    unlinked: bool
    created_at: int


@dataclass(frozen=True)
class SignedPreKey:
    key_id: int
    pub: bytes
    signature: bytes


class Store:
    """The sandbox database. One instance per server, used from the event loop thread."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA journal_mode = WAL")
        # Every message and receipt is a few commits (queued, then released by the ack);
        # with FULL each one waited for an fdatasync: half the sandbox's time under load.
        # NORMAL in WAL mode survives a crash of the sandbox process (what "held until
        # acked" is about); only a crash of the machine can lose the last commits.
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.executescript(SCHEMA)
        self._migrate()
        self.groups = GroupStore(self.db)
        self.app_state = AppStateStore(self.db)
        self.newsletters = NewsletterStore(self.db)

    def _migrate(self) -> None:
        """Bring a sandbox database from an older version up to the current schema."""
        columns = {row["name"] for row in self.db.execute("PRAGMA table_info(queue)")}
        for column, ddl in (
            ("tag", "TEXT NOT NULL DEFAULT ''"),
            ("stanza_id", "TEXT NOT NULL DEFAULT ''"),
            ("attempts", "INTEGER NOT NULL DEFAULT 0"),
        ):
            if column not in columns:
                self.db.execute(f"ALTER TABLE queue ADD COLUMN {column} {ddl}")
        self.db.execute(
            "CREATE INDEX IF NOT EXISTS queue_ack ON queue (phone, device, tag, stanza_id)"
        )

    def close(self) -> None:
        self.db.close()

    # -- phones

    def create_phone(self, phone: str, push_name: str, signing_seed: bytes) -> Phone:
        while True:
            lid = str(10**14 + secrets.randbelow(9 * 10**14))
            if not self.db.execute("SELECT 1 FROM phones WHERE lid = ?", (lid,)).fetchone():
                break
        now = int(time.time())
        self.db.execute(
            "INSERT INTO phones (phone, push_name, lid, signing_seed, created_at)"
            " VALUES (?,?,?,?,?)",
            (phone, push_name, lid, signing_seed, now),
        )
        return Phone(phone, push_name, lid, signing_seed, now)

    def phone(self, phone: str) -> Phone | None:
        row = self.db.execute(
            "SELECT phone, push_name, lid, signing_seed, created_at FROM phones WHERE phone = ?",
            (phone,),
        ).fetchone()
        return Phone(**row) if row else None

    def phone_by_lid(self, lid: str) -> Phone | None:
        row = self.db.execute(
            "SELECT phone, push_name, lid, signing_seed, created_at FROM phones WHERE lid = ?",
            (lid,),
        ).fetchone()
        return Phone(**row) if row else None

    def phones(self) -> list[Phone]:
        rows = self.db.execute(
            "SELECT phone, push_name, lid, signing_seed, created_at FROM phones ORDER BY phone"
        )
        return [Phone(**row) for row in rows]

    # -- devices

    def add_device(
        self,
        phone: str,
        *,
        noise_pub: bytes,
        identity_pub: bytes,
        registration_id: int,
        skey: SignedPreKey,
        platform: str,
    ) -> Device:
        """Register a newly linked companion under the phone's next device number."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            (number,) = self.db.execute(
                "SELECT next_device FROM phones WHERE phone = ?", (phone,)
            ).fetchone()
            self.db.execute(
                "UPDATE phones SET next_device = next_device + 1 WHERE phone = ?", (phone,)
            )
            now = int(time.time())
            self.db.execute(
                "INSERT INTO devices (phone, device, noise_pub, identity_pub, registration_id,"
                " skey_id, skey_pub, skey_sig, platform, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    phone,
                    number,
                    noise_pub,
                    identity_pub,
                    registration_id,
                    skey.key_id,
                    skey.pub,
                    skey.signature,
                    platform,
                    now,
                ),
            )
        device = self.device(phone, number)
        assert device is not None
        return device

    def device(self, phone: str, number: int) -> Device | None:
        row = self.db.execute(
            "SELECT * FROM devices WHERE phone = ? AND device = ?", (phone, number)
        ).fetchone()
        return _device(row) if row else None

    def last_device_number(self, phone: str) -> int:
        """The highest device number ever given out for ``phone`` (0: none), unlinked or
        not: the account's current ADV key index."""
        row = self.db.execute("SELECT next_device FROM phones WHERE phone = ?", (phone,)).fetchone()
        return int(row[0]) - 1 if row else 0

    def devices(self, phone: str, *, include_unlinked: bool = False) -> list[Device]:
        rows = self.db.execute(
            "SELECT * FROM devices WHERE phone = ? AND (unlinked = 0 OR ?) ORDER BY device",
            (phone, include_unlinked),
        )
        return [_device(row) for row in rows]

    def update_identity(
        self,
        phone: str,
        number: int,
        *,
        identity_pub: bytes,
        registration_id: int,
        skey: SignedPreKey,
    ) -> None:
        self.db.execute(
            "UPDATE devices SET identity_pub = ?, registration_id = ?, skey_id = ?, skey_pub = ?,"
            " skey_sig = ? WHERE phone = ? AND device = ?",
            (identity_pub, registration_id, skey.key_id, skey.pub, skey.signature, phone, number),
        )

    def mark_unlinked(self, phone: str, number: int) -> None:
        """Keep a tombstone so an offline companion is logged out when it next connects."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "UPDATE devices SET unlinked = 1 WHERE phone = ? AND device = ?", (phone, number)
            )
            self.db.execute("DELETE FROM prekeys WHERE phone = ? AND device = ?", (phone, number))
            self.db.execute("DELETE FROM queue WHERE phone = ? AND device = ?", (phone, number))

    def delete_device(self, phone: str, number: int) -> None:
        self.db.execute("DELETE FROM devices WHERE phone = ? AND device = ?", (phone, number))

    # -- prekeys

    def add_prekeys(self, phone: str, number: int, keys: list[tuple[int, bytes]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO prekeys (phone, device, key_id, pub) VALUES (?,?,?,?)",
            [(phone, number, key_id, pub) for key_id, pub in keys],
        )

    def prekey_count(self, phone: str, number: int) -> int:
        (count,) = self.db.execute(
            "SELECT COUNT(*) FROM prekeys WHERE phone = ? AND device = ?", (phone, number)
        ).fetchone()
        return count

    def take_prekey(self, phone: str, number: int) -> tuple[int, bytes] | None:
        """Hand out (and forget) the lowest one-time prekey, as the real server does."""
        row = self.db.execute(
            "DELETE FROM prekeys WHERE rowid = (SELECT rowid FROM prekeys WHERE phone = ?"
            " AND device = ? ORDER BY key_id LIMIT 1) RETURNING key_id, pub",
            (phone, number),
        ).fetchone()
        return (row["key_id"], row["pub"]) if row else None

    # -- offline queue

    def enqueue(
        self, phone: str, number: int, stanza: bytes, tag: str = "", stanza_id: str = ""
    ) -> None:
        """Keep a stanza for the device; with ``tag``/``stanza_id`` it stays until acked."""
        self.db.execute(
            "INSERT INTO queue (phone, device, stanza, created_at, tag, stanza_id) "
            "VALUES (?,?,?,?,?,?)",
            (phone, number, stanza, int(time.time()), tag, stanza_id),
        )

    def queued(self, phone: str, number: int) -> list[tuple[int, bytes, bool]]:
        """(seq, stanza, held until acked) of everything waiting for the device."""
        rows = self.db.execute(
            "SELECT seq, stanza, stanza_id FROM queue WHERE phone = ? AND device = ? ORDER BY seq",
            (phone, number),
        )
        return [(row["seq"], row["stanza"], bool(row["stanza_id"])) for row in rows]

    def queued_count(self, phone: str, number: int) -> int:
        (count,) = self.db.execute(
            "SELECT COUNT(*) FROM queue WHERE phone = ? AND device = ?", (phone, number)
        ).fetchone()
        return int(count)

    def dequeue(self, seqs: list[int]) -> None:
        self.db.executemany("DELETE FROM queue WHERE seq = ?", [(s,) for s in seqs])

    def count_attempt(self, seqs: list[int], limit: int) -> None:
        """One more delivery of held stanzas; ones a client never acks are given up on."""
        self.db.executemany(
            "UPDATE queue SET attempts = attempts + 1 WHERE seq = ?", [(s,) for s in seqs]
        )
        self.db.execute("DELETE FROM queue WHERE attempts >= ?", (limit,))

    def acknowledge(self, phone: str, number: int, tag: str, stanza_ids: list[str]) -> None:
        """The device confirmed these stanzas (a receipt for a message, an ack otherwise)."""
        self.db.executemany(
            "DELETE FROM queue WHERE phone = ? AND device = ? AND tag = ? AND stanza_id = ?",
            [(phone, number, tag, stanza_id) for stanza_id in stanza_ids],
        )

    # -- profile pictures (owner: a phone number or a group id)

    def set_picture(self, owner: str, data: bytes) -> str:
        picture_id = str(10**9 + secrets.randbelow(9 * 10**9))
        self.db.execute(
            "INSERT OR REPLACE INTO pictures (owner, picture_id, data) VALUES (?,?,?)",
            (owner, picture_id, data),
        )
        return picture_id

    def picture(self, owner: str) -> tuple[str, bytes] | None:
        row = self.db.execute(
            "SELECT picture_id, data FROM pictures WHERE owner = ?", (owner,)
        ).fetchone()
        return (row["picture_id"], bytes(row["data"])) if row else None

    def delete_picture(self, owner: str) -> None:
        self.db.execute("DELETE FROM pictures WHERE owner = ?", (owner,))


def _device(row: sqlite3.Row) -> Device:
    values = dict(row)
    values["unlinked"] = bool(values["unlinked"])
    return Device(**values)
