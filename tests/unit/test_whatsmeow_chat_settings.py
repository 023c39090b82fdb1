"""The chat store follows whatsmeow's chat settings (archived, pinned) in a few statements,
however many chats are stored: a client polling ``/chats`` of an account with thousands of
chats must not pay a lookup per chat (on PostgreSQL, a round trip each). Both backends,
on a store whose tables whatsmeow made itself (neonize opening it)."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg
import pytest
from neonize.client import ClientFactory

from gowa_py.storage import postgres
from gowa_py.storage.sql import POSTGRESQL, SQLITE, Rows
from tests.backends import Backend
from workers.chatsdb import ChatsDb
from workers.chatstore import ChatStore
from workers.whatsmeowstore import SchemaWhatsmeow, SqliteWhatsmeow

ME, OTHER = "15550001111:7@s.whatsapp.net", "15550002222:3@s.whatsapp.net"
STORED = 2000


def chat(n: int) -> str:
    return f"1666{n:07d}@s.whatsapp.net"


class Counted:
    """A real connection that counts the statements run on it (each row of an
    ``executemany`` one)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.statements = 0

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows:
        self.statements += 1
        return self.connection.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Rows:
        rows = list(parameters)
        self.statements += len(rows)
        return self.connection.executemany(sql, rows)

    @property
    def in_transaction(self) -> bool:
        return bool(self.connection.in_transaction)

    def close(self) -> None:
        self.connection.close()


def _device_row(jid: str) -> tuple[Any, ...]:
    key = secrets.token_bytes
    return (jid, 1, key(32), key(32), key(32), 1, key(64), key(32), b"", key(64), key(32), key(64))


DEVICE = (
    "INSERT INTO whatsmeow_device (jid, registration_id, noise_key, identity_key, "
    "signed_pre_key, signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details, "
    "adv_account_sig, adv_account_sig_key, adv_device_sig) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SETTING = (
    "INSERT INTO whatsmeow_chat_settings (our_jid, chat_jid, pinned, archived) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (our_jid, chat_jid) DO UPDATE SET pinned = excluded.pinned, "
    "archived = excluded.archived"
)


class Whatsmeow:
    """The session's whatsmeow store as neonize makes it, and a way to write what
    whatsmeow writes when it applies app-state patches."""

    def __init__(self, backend: Backend, db: ChatsDb) -> None:
        self.backend = backend
        self.path = backend.data_dir / "sessions" / "s" / "whatsmeow.db"
        if backend.database:
            ClientFactory.get_all_devices_from_db(postgres.whatsmeow_url(backend.url, "s"))
            self.reader: SchemaWhatsmeow | SqliteWhatsmeow = SchemaWhatsmeow(db)
        else:
            ClientFactory.get_all_devices_from_db(str(self.path))
            self.reader = SqliteWhatsmeow(self.path)
        self.write("DEVICE", [_device_row(ME), _device_row(OTHER)])

    def write(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        sql = DEVICE if statement == "DEVICE" else SETTING
        if self.backend.database:
            schema = postgres.quoted(postgres.session_schema("s"))
            with psycopg.connect(self.backend.url, options=f"-c search_path={schema}") as conn:
                conn.cursor().executemany(sql.replace("?", "%s"), rows)
        else:
            conn = sqlite3.connect(self.path)
            with conn:
                conn.executemany(sql, rows)
            conn.close()

    def settings(self, rows: list[tuple[str, str, bool, bool]]) -> None:
        self.write("SETTING", rows)


@pytest.fixture
def stores(storage_backend: Backend) -> Iterator[tuple[ChatStore, Counted, Whatsmeow]]:
    db = storage_backend.session_db()
    counted = Counted(db.connection)
    chats = ChatsDb(counted, POSTGRESQL if storage_backend.database else SQLITE)
    store = ChatStore(chats)
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO chats (jid, name, created_at, updated_at) VALUES (?, ?, 0, 0)",
            [(chat(n), f"Chat {n}") for n in range(STORED)],
        )
    whatsmeow = Whatsmeow(storage_backend, chats)
    yield store, counted, whatsmeow
    whatsmeow.reader.close()


def refresh(store: ChatStore, whatsmeow: Whatsmeow, jid: str | None = None) -> int:
    """What the worker does before ``/chats`` (``jid`` None) or a chat's messages."""
    return store.follow_chat_flags(whatsmeow.reader.chat_settings(ME, jid))


def flags(store: ChatStore, jid: str) -> tuple[bool, bool]:
    found = store.chat(jid)
    assert found is not None, jid
    return bool(found["pinned"]), bool(found["archived"])


def test_the_chat_store_follows_whatsmeows_chat_settings(stores) -> None:
    store, _, whatsmeow = stores
    unstored = "16669999999@s.whatsapp.net"
    whatsmeow.settings(
        [(ME, chat(1), False, True), (ME, chat(2), True, False), (ME, chat(3), True, True)]
        + [(ME, unstored, False, True), (OTHER, chat(4), True, True)]
        + [(ME, chat(n), False, False) for n in range(100, 400)]  # muted only, say
    )
    assert refresh(store, whatsmeow) == 3
    assert [flags(store, chat(n)) for n in (1, 2, 3, 4)] == [
        (False, True),
        (True, False),
        (True, True),
        (False, False),  # another device's settings are not this session's
    ]
    assert store.chat(unstored) is None
    assert store.chats(10, 0, archived=True)[1] == 2
    assert refresh(store, whatsmeow) == 0

    whatsmeow.settings([(ME, chat(1), False, False), (ME, chat(2), True, True)])
    assert refresh(store, whatsmeow, chat(1)) == 1  # one chat's messages: that chat only
    assert flags(store, chat(1)) == (False, False) and flags(store, chat(2)) == (True, False)
    assert refresh(store, whatsmeow) == 1
    assert flags(store, chat(2)) == (True, True)


def test_a_refresh_costs_statements_by_chat_settings_not_by_chats_stored(stores) -> None:
    """Against the 2000 stored chats: one read of whatsmeow's table (on PostgreSQL on the
    same connection, counted here too), one of the chats it names, and when one differs,
    a transaction writing that one."""
    store, counted, whatsmeow = stores
    whatsmeow.settings([(ME, chat(n), False, n % 2 == 0) for n in range(300)])
    assert refresh(store, whatsmeow) == 150
    reads = 2 if whatsmeow.backend.database else 1

    counted.statements = 0
    assert refresh(store, whatsmeow) == 0
    assert counted.statements == reads

    whatsmeow.settings([(ME, chat(7), True, False)])
    counted.statements = 0
    assert refresh(store, whatsmeow) == 1
    assert counted.statements == reads + 3  # BEGIN, the one UPDATE, COMMIT
