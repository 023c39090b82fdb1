"""GoWA's chat storage (``chatstorage.db``) read for one device, written as a session's
``chats.db`` (the tables of :mod:`gowa_py.storage.chats_schema`).

GoWA v7 keeps one device's chats and messages; v8 and later add a ``device_id`` column
to every table (the device's JID without its device number; early v8 releases wrote the
full JID or GoWA's device id, and rows from before v8 have ``''``) and a ``devices``
table, GoWA's device registry: its user-facing id, JID and per-device webhook. GoWA
writes times through Go's SQLite drivers as text (``2006-01-02 15:04:05.999999999-07:00``
and variants); chats.db keeps Unix seconds.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from gowa_py.importers import gowa_message
from gowa_py.privatefile import private_sqlite
from gowa_py.storage import chats_schema

_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?\s*(Z|[+-]\d\d:?\d\d)?"
)


def seconds(value: Any) -> float | None:
    """A GoWA TIMESTAMP value as Unix seconds (None when empty or unreadable)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value) / 1000 if value > 1e11 else float(value)
    match = _TIME.match(str(value).strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    tz = UTC
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    moment = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz
    )
    return moment.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


@dataclass(frozen=True)
class GowaDevice:
    """A row of GoWA's device registry (``devices``, v8 and later)."""

    device_id: str
    jid: str
    ad_jid: str = ""
    webhook_url: str | None = None
    webhook_secret: str = ""
    webhook_events: str = ""


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}


def is_chat_storage(conn: sqlite3.Connection) -> bool:
    return {"id", "chat_jid", "timestamp"} <= _columns(conn, "messages")


def registry(conn: sqlite3.Connection) -> list[GowaDevice]:
    """GoWA's devices (none for v7, which has no registry)."""
    have = _columns(conn, "devices")
    if not {"device_id", "jid"} <= have:
        return []

    def pick(name: str, default: str) -> str:
        return f"COALESCE({name}, {default})" if name in have else default

    rows = conn.execute(
        f"SELECT device_id, COALESCE(jid, ''), {pick('ad_jid', repr(''))}, "
        f"{'webhook_url' if 'webhook_url' in have else 'NULL'}, "
        f"{pick('webhook_secret', repr(''))}, {pick('webhook_events', repr(''))} FROM devices"
    )
    return [GowaDevice(*row) for row in rows]


def _scope(conn: sqlite3.Connection, table: str, owners: Sequence[str]) -> tuple[str, list[str]]:
    """The WHERE clause picking a device's rows (all rows of a v7 file, which has one)."""
    if "device_id" not in _columns(conn, table):
        return "", []
    return f" WHERE device_id IN ({', '.join('?' * len(owners))})", list(owners)


def count(conn: sqlite3.Connection, owners: Sequence[str]) -> tuple[int, int]:
    """The device's (chats, messages)."""
    chats_where, chats_args = _scope(conn, "chats", owners)
    messages_where, messages_args = _scope(conn, "messages", owners)
    chats = conn.execute(f"SELECT COUNT(*) FROM chats{chats_where}", chats_args).fetchone()[0]
    messages = conn.execute(
        f"SELECT COUNT(*) FROM messages{messages_where}", messages_args
    ).fetchone()[0]
    return chats, messages


def _jid(value: str | None) -> str:
    value = value or ""
    return value if "@" in value or not value else f"{value}@s.whatsapp.net"


def copy_history(source: Path, owners: Sequence[str], target: Path) -> tuple[int, int]:
    """Write the device's chats, messages and reactions into a new ``chats.db`` at
    ``target``; returns (chats, messages)."""
    private_sqlite(target)
    conn = sqlite3.connect(target)
    try:
        chats_schema.apply(conn, target)
        conn.execute("ATTACH DATABASE ? AS gowa", (str(source),))
        gowa = _Reader(conn)
        with conn:
            chats = gowa.chats(owners)
            messages = gowa.messages(owners)
            gowa.reactions(owners)
        conn.execute("DETACH DATABASE gowa")
        return chats, messages
    finally:
        conn.close()


class _Reader:
    """Reads the attached ``gowa`` schema, writes ``main`` (one transaction, the caller's)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.row_factory = sqlite3.Row

    def _have(self, table: str) -> set[str]:
        return {row[1] for row in self.conn.execute(f'PRAGMA gowa.table_info("{table}")')}

    def _rows(self, table: str, owners: Sequence[str]) -> list[sqlite3.Row]:
        have = self._have(table)
        if not have:
            return []
        where, args = ("", [])
        if "device_id" in have:
            where, args = f" WHERE device_id IN ({', '.join('?' * len(owners))})", list(owners)
        return self.conn.execute(f'SELECT * FROM gowa."{table}"{where}', args).fetchall()

    def chats(self, owners: Sequence[str]) -> int:
        now = time.time()
        rows = self._rows("chats", owners)
        for row in rows:
            keys = row.keys()
            self.conn.execute(
                "INSERT INTO chats (jid, name, last_message_time, ephemeral_expiration, "
                "archived, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (jid) DO UPDATE SET last_message_time = MAX("
                "COALESCE(chats.last_message_time, 0), COALESCE(excluded.last_message_time, 0))",
                (
                    _jid(row["jid"]),
                    row["name"] or "",
                    seconds(row["last_message_time"]),
                    row["ephemeral_expiration"] or 0,
                    int(bool(row["archived"])) if "archived" in keys else 0,
                    seconds(row["created_at"]) or now,
                    seconds(row["updated_at"]) or now,
                ),
            )
        return len(rows)

    def messages(self, owners: Sequence[str]) -> int:
        now = time.time()
        edited = {row["original_message_id"] for row in self._rows("message_edits", owners)}
        rows = self._rows("messages", owners)
        for row in rows:
            stamp = seconds(row["timestamp"]) or now
            chat = _jid(row["chat_jid"])
            self.conn.execute(
                "INSERT INTO chats (jid, last_message_time, created_at, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (jid) DO NOTHING",
                (chat, stamp, now, now),
            )
            self.conn.execute(
                "INSERT OR REPLACE INTO messages (id, chat_jid, sender_jid, content, timestamp, "
                "is_from_me, media_type, mimetype, filename, url, file_length, edited, raw, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row["id"],
                    chat,
                    _jid(row["sender"]),
                    row["content"] or "",
                    stamp,
                    int(bool(row["is_from_me"])),
                    row["media_type"] or "",
                    gowa_message.mimetype(row),
                    row["filename"] or "",
                    row["url"] or "",
                    row["file_length"] or 0,
                    int(row["id"] in edited),
                    gowa_message.rebuild(row),
                    seconds(row["created_at"]) or now,
                    seconds(row["updated_at"]) or now,
                ),
            )
        return len(rows)

    def reactions(self, owners: Sequence[str]) -> None:
        for row in self._rows("message_reactions", owners):
            if row["emoji"]:
                self.conn.execute(
                    "INSERT OR REPLACE INTO reactions (chat_jid, message_id, sender_jid, emoji, "
                    "timestamp) VALUES (?, ?, ?, ?, ?)",
                    (
                        _jid(row["chat_jid"]),
                        row["message_id"],
                        _jid(row["reactor_jid"]),
                        row["emoji"],
                        seconds(row["reaction_timestamp"]) or time.time(),
                    ),
                )


def remove_device(path: Path, owners: Sequence[str], device_id: str | None) -> None:
    """Delete the device's rows (and its registry row) from GoWA's chat storage."""
    conn = sqlite3.connect(path, timeout=5)
    try:
        tables = [
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if "device_id" in _columns(conn, row[0]) and row[0] != "devices"
        ]
        marks = ", ".join("?" * len(owners))
        with conn:
            for table in tables:
                conn.execute(f'DELETE FROM "{table}" WHERE device_id IN ({marks})', list(owners))
            if device_id is not None:
                conn.execute("DELETE FROM devices WHERE device_id = ?", (device_id,))
    finally:
        conn.close()
