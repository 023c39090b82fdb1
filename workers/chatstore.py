"""Per-session chat storage in ``chats.db`` (or the session's PostgreSQL schema).

GoWA keeps chats and messages in its own database so ``/chats`` and
``/chat/{jid}/messages`` answer without asking WhatsApp; this is the per-session
equivalent, in the worker's ``chats.db`` (see workers/chatsdb.py). The raw message
protobuf is kept too: forward, download and reactions need the original message, and
WhatsApp will not hand it out again.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from gowa_py.storage.sql import Connection, Sql
from workers.chatsdb import ChatsDb
from workers.timefmt import rfc3339

# A receipt only ever moves a message forward: a late "delivered" never undoes "read".
STATUS_RANK = {"": 0, "pending": 0, "sent": 1, "delivered": 2, "read": 3, "played": 4}
PRUNE_INTERVAL_S = 3600
EARLY_RECEIPTS = 1000
#: Chats looked up per statement (well under SQLite's 32766 parameters).
IN_CHUNK = 500


class ChatStore:
    """Thread-safe access to the chat tables (neonize calls back from Go threads)."""

    def __init__(self, db: ChatsDb, retention_days: int | None = None) -> None:
        self.retention_days = retention_days
        self._lock = db.lock
        self._db = db.connection
        self._chats = db
        self._pruned_at = 0.0
        # Receipts that beat the sender's own insert (the sandbox acks within microseconds).
        self._early: OrderedDict[str, str] = OrderedDict()
        self.prune()

    def transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction on the session's database, joined by the event log's."""
        return self._chats.transaction()

    # ------------------------------------------------------------------ writes

    def _touch_chat(self, db: Sql, jid: str, timestamp: float | None, name: str = "") -> None:
        now = time.time()
        db.execute(
            "INSERT INTO chats (jid, name, last_message_time, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (jid) DO UPDATE SET "
            "name = CASE WHEN excluded.name != '' THEN excluded.name ELSE chats.name END, "
            "last_message_time = CASE WHEN COALESCE(excluded.last_message_time, 0) > "
            "COALESCE(chats.last_message_time, 0) THEN excluded.last_message_time "
            "ELSE COALESCE(chats.last_message_time, 0) END, updated_at = excluded.updated_at",
            (jid, name, timestamp, now, now),
        )

    def add_message(
        self,
        *,
        id: str,
        chat_jid: str,
        sender_jid: str,
        timestamp: float,
        is_from_me: bool,
        content: str = "",
        sender_name: str = "",
        chat_name: str = "",
        status: str = "",
        media: dict[str, Any] | None = None,
        raw: bytes | None = None,
    ) -> None:
        """Insert a message (or refresh it when WhatsApp delivers it again)."""
        media = media or {}
        now = time.time()
        with self.transaction() as db:
            status = self._early.pop(id, status) if is_from_me else status
            self._touch_chat(db, chat_jid, timestamp, chat_name)
            db.execute(
                "INSERT INTO messages (id, chat_jid, sender_jid, sender_name, content, timestamp, "
                "is_from_me, status, media_type, mimetype, filename, url, file_length, "
                "media_path, raw, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (chat_jid, id) DO UPDATE SET content = excluded.content, "
                "raw = COALESCE(excluded.raw, messages.raw), updated_at = excluded.updated_at",
                (
                    id,
                    chat_jid,
                    sender_jid,
                    sender_name,
                    content,
                    timestamp,
                    int(is_from_me),
                    status,
                    media.get("media_type", ""),
                    media.get("mimetype", ""),
                    media.get("filename", ""),
                    media.get("url", ""),
                    int(media.get("file_length") or 0),
                    media.get("media_path", ""),
                    raw,
                    now,
                    now,
                ),
            )
        if now - self._pruned_at > PRUNE_INTERVAL_S:
            self.prune()

    def set_status(self, message_ids: list[str], status: str) -> None:
        """Apply a receipt to our own messages (never downgrading their status)."""
        rank = STATUS_RANK.get(status, 0)
        lower = [name for name, value in STATUS_RANK.items() if value < rank]
        if not message_ids or not lower:
            return
        ids = ",".join("?" * len(message_ids))
        states = ",".join("?" * len(lower))
        with self.transaction() as db:
            db.execute(
                f"UPDATE messages SET status = ?, updated_at = ? WHERE is_from_me = 1 "
                f"AND id IN ({ids}) AND status IN ({states})",
                (status, time.time(), *message_ids, *lower),
            )
            known = {
                row[0]
                for row in db.execute(f"SELECT id FROM messages WHERE id IN ({ids})", message_ids)
            }
            for message_id in message_ids:
                if message_id not in known and rank > STATUS_RANK.get(
                    self._early.get(message_id, ""), 0
                ):
                    self._early[message_id] = status
            while len(self._early) > EARLY_RECEIPTS:
                self._early.popitem(last=False)

    def set_reaction(
        self, chat_jid: str, message_id: str, sender_jid: str, emoji: str, timestamp: float
    ) -> None:
        with self.transaction() as db:
            if emoji:
                db.execute(
                    "INSERT INTO reactions VALUES (?, ?, ?, ?, ?) ON CONFLICT "
                    "(chat_jid, message_id, sender_jid) DO UPDATE SET emoji = excluded.emoji, "
                    "timestamp = excluded.timestamp",
                    (chat_jid, message_id, sender_jid, emoji, timestamp),
                )
            else:
                db.execute(
                    "DELETE FROM reactions WHERE chat_jid = ? AND message_id = ? "
                    "AND sender_jid = ?",
                    (chat_jid, message_id, sender_jid),
                )

    def edit(self, chat_jid: str, message_id: str, content: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE messages SET content = ?, edited = 1, updated_at = ? "
                "WHERE chat_jid = ? AND id = ?",
                (content, time.time(), chat_jid, message_id),
            )

    def revoke(self, chat_jid: str, message_id: str) -> None:
        """A message deleted for everyone keeps its row (and reactions) but loses its content."""
        with self.transaction() as db:
            db.execute(
                "UPDATE messages SET content = '', revoked = 1, raw = NULL, updated_at = ? "
                "WHERE chat_jid = ? AND id = ?",
                (time.time(), chat_jid, message_id),
            )

    def set_flag(self, chat_jid: str, message_id: str, flag: str, value: Any) -> None:
        if flag not in ("media_path",):
            raise ValueError(flag)
        with self.transaction() as db:
            db.execute(
                f"UPDATE messages SET {flag} = ?, updated_at = ? WHERE chat_jid = ? AND id = ?",
                (value, time.time(), chat_jid, message_id),
            )

    def set_chat(self, jid: str, **fields: Any) -> None:
        """Update chat attributes (pinned, archived, ephemeral_expiration, name)."""
        allowed = {"pinned", "archived", "ephemeral_expiration", "name"}
        if not fields or set(fields) - allowed:
            raise ValueError(sorted(fields))
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction() as db:
            self._touch_chat(db, jid, None)
            db.execute(
                f"UPDATE chats SET {assignments}, updated_at = ? WHERE jid = ?",
                (*fields.values(), time.time(), jid),
            )

    def prune(self) -> int:
        """Drop messages older than the retention (and chats left without messages)."""
        self._pruned_at = time.time()
        if not self.retention_days:
            return 0
        cutoff = time.time() - self.retention_days * 86400
        with self.transaction() as db:
            removed = db.execute("DELETE FROM messages WHERE timestamp < ?", (cutoff,)).rowcount
            db.execute("DELETE FROM reactions WHERE timestamp < ?", (cutoff,))
            db.execute(
                "DELETE FROM chats WHERE COALESCE(last_message_time, 0) < ? AND pinned = 0 "
                "AND jid NOT IN (SELECT DISTINCT chat_jid FROM messages)",
                (cutoff,),
            )
        return removed

    # ------------------------------------------------------------------- reads

    def message(self, message_id: str, chat_jid: str | None = None) -> dict[str, Any] | None:
        """One stored message by id (in ``chat_jid`` when given), raw protobuf included."""
        query = "SELECT * FROM messages WHERE id = ?"
        args: tuple[Any, ...] = (message_id,)
        if chat_jid:
            query += " AND chat_jid = ?"
            args += (chat_jid,)
        with self._lock:
            row = self._db.execute(query + " ORDER BY timestamp DESC LIMIT 1", args).fetchone()
        return dict(row) if row else None

    def follow_chat_flags(self, flags: dict[str, tuple[bool, bool]]) -> int:
        """Set the (pinned, archived) of the chats in ``flags`` where they differ; chats
        not stored stay absent. One read per ``IN_CHUNK`` chats, and a write transaction
        only when one differs (a ``GET /chats`` that changes nothing writes nothing).
        Returns how many chats changed."""
        jids, changed = list(flags), list[tuple[int, int, float, str]]()
        now = time.time()
        with self._lock:
            for start in range(0, len(jids), IN_CHUNK):
                part = jids[start : start + IN_CHUNK]
                rows = self._db.execute(
                    "SELECT jid, pinned, archived FROM chats WHERE jid IN "
                    f"({', '.join('?' * len(part))})",
                    part,
                )
                for row in rows:
                    pinned, archived = flags[row["jid"]]
                    if (bool(row["pinned"]), bool(row["archived"])) != (pinned, archived):
                        changed.append((int(pinned), int(archived), now, row["jid"]))
            if changed:
                with self.transaction() as db:
                    db.executemany(
                        "UPDATE chats SET pinned = ?, archived = ?, updated_at = ? WHERE jid = ?",
                        changed,
                    )
        return len(changed)

    def chat(self, jid: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM chats WHERE jid = ?", (jid,)).fetchone()
        return _chat_json(row) if row else None

    def chats(
        self,
        limit: int,
        offset: int,
        search: str = "",
        has_media: bool = False,
        archived: bool | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        where, args = ["1 = 1"], list[Any]()
        if search:
            # LOWER on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not.
            where.append("(LOWER(name) LIKE LOWER(?) OR LOWER(jid) LIKE LOWER(?))")
            args += [f"%{search}%", f"%{search}%"]
        if has_media:
            where.append(
                "jid IN (SELECT chat_jid FROM messages WHERE media_type != '' AND revoked = 0)"
            )
        if archived is not None:
            where.append("archived = ?")
            args.append(int(archived))
        clause = " AND ".join(where)
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM chats WHERE {clause}", args)
            count = int(total.fetchone()[0])
            rows = self._db.execute(
                f"SELECT * FROM chats WHERE {clause} ORDER BY pinned DESC, "
                "COALESCE(last_message_time, 0) DESC LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
        return [_chat_json(row) for row in rows], count

    def messages(
        self,
        chat_jid: str,
        limit: int,
        offset: int,
        *,
        start: float | None = None,
        end: float | None = None,
        media_only: bool = False,
        is_from_me: bool | None = None,
        search: str = "",
    ) -> tuple[list[dict[str, Any]], int]:
        where, args = ["chat_jid = ?"], list[Any]([chat_jid])
        if start is not None:
            where.append("timestamp >= ?")
            args.append(start)
        if end is not None:
            where.append("timestamp <= ?")
            args.append(end)
        if media_only:
            where.append("media_type != ''")
        if is_from_me is not None:
            where.append("is_from_me = ?")
            args.append(int(is_from_me))
        if search:
            where.append("LOWER(content) LIKE LOWER(?)")
            args.append(f"%{search}%")
        clause = " AND ".join(where)
        with self._lock:
            count = int(
                self._db.execute(f"SELECT COUNT(*) FROM messages WHERE {clause}", args).fetchone()[
                    0
                ]
            )
            rows = self._db.execute(
                f"SELECT * FROM messages WHERE {clause} ORDER BY timestamp DESC LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
            reactions: dict[str, list[dict[str, Any]]] = {}
            if rows:
                marks = ",".join("?" * len(rows))
                for reaction in self._db.execute(
                    f"SELECT * FROM reactions WHERE chat_jid = ? AND message_id IN ({marks}) "
                    "ORDER BY timestamp",
                    (chat_jid, *(row["id"] for row in rows)),
                ):
                    reactions.setdefault(reaction["message_id"], []).append(
                        {
                            "emoji": reaction["emoji"],
                            "sender_jid": reaction["sender_jid"],
                            "timestamp": rfc3339(reaction["timestamp"]),
                        }
                    )
        return [_message_json(row, reactions.get(row["id"], [])) for row in rows], count


def _chat_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """GoWA's chat shape (``ChatListResponse.results.data[]``) plus ``pinned``."""
    return {
        "jid": row["jid"],
        "name": row["name"],
        "last_message_time": rfc3339(row["last_message_time"]) if row["last_message_time"] else "",
        "ephemeral_expiration": row["ephemeral_expiration"],
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
        "archived": bool(row["archived"]),
        "pinned": bool(row["pinned"]),
    }


def _message_json(row: Mapping[str, Any], reactions: list[dict[str, Any]]) -> dict[str, Any]:
    """GoWA's message shape (``ChatMessagesResponse.results.data[]``) plus our flags."""
    return {
        "id": row["id"],
        "chat_jid": row["chat_jid"],
        "sender_jid": row["sender_jid"],
        "sender_display_name": row["sender_name"],
        "content": row["content"],
        "timestamp": rfc3339(row["timestamp"]),
        "is_from_me": bool(row["is_from_me"]),
        "media_type": row["media_type"],
        "filename": row["filename"],
        "url": row["url"],
        "file_length": row["file_length"],
        "reactions": reactions,
        "status": row["status"],
        "is_edited": bool(row["edited"]),
        "is_revoked": bool(row["revoked"]),
        "is_starred": bool(row["starred"]),
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }
