"""``gowa import gowa``: a GoWA v9 installation made honestly, imported, and used.

Two sessions are paired with the sandbox by real neonize workers and exchange messages;
their whatsmeow rows are then merged into one store, as GoWA v8 and later keep every
device in one, and a chat storage with GoWA's schema (its migrations, copied below) is
filled with chats and messages of both devices. The import makes one session per device:
each connects without a QR code, sends and receives with the Signal sessions it
inherited, and serves the imported history.
"""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as e2e

from gowa_py.importers.whatsmeow_store import NEONIZE_STORE_VERSION
from tests.e2e.conftest import SUBPROCESS_WORKERS, EventWatcher, is_event, new_phone, pair
from tests.procs import ROOT, Gateway, wait_until
from tests.receiver import WebhookReceiver

pytestmark = pytest.mark.integration

ALICE, BOB, CAROL = "15550001801", "15550001802", "15550001803"
DOCUMENT = b"%PDF-1.4 quarterly report " + bytes(range(256))

#: GoWA v9's chat-storage migrations (src/infrastructure/chatstorage/sqlite_repository.go,
#: getMigrations), those of the tables the import reads; the Chatwoot tables are left out.
GOWA_CHATSTORAGE_MIGRATIONS = (
    """CREATE TABLE IF NOT EXISTS chats (
        jid VARCHAR(255) NOT NULL,
        device_id VARCHAR(255) NOT NULL DEFAULT '',
        name VARCHAR(255) NOT NULL,
        last_message_time TIMESTAMP NOT NULL,
        ephemeral_expiration INTEGER DEFAULT 0,
        created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        PRIMARY KEY (jid, device_id)
    )""",
    """CREATE TABLE IF NOT EXISTS messages (
        id VARCHAR(255) NOT NULL,
        chat_jid VARCHAR(255) NOT NULL,
        device_id VARCHAR(255) NOT NULL DEFAULT '',
        sender VARCHAR(255) NOT NULL,
        content TEXT,
        timestamp TIMESTAMP NOT NULL,
        is_from_me BOOLEAN DEFAULT FALSE,
        media_type VARCHAR(50),
        filename VARCHAR(255),
        url TEXT,
        media_key BLOB,
        file_sha256 BLOB,
        file_enc_sha256 BLOB,
        file_length INTEGER DEFAULT 0,
        created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        PRIMARY KEY (id, chat_jid, device_id)
    )""",
    """CREATE TABLE IF NOT EXISTS devices (
        device_id VARCHAR(255) PRIMARY KEY,
        display_name VARCHAR(255) DEFAULT '',
        jid VARCHAR(255) DEFAULT '',
        created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
    )""",
    "CREATE INDEX IF NOT EXISTS idx_messages_chat_jid ON messages(chat_jid)",
    "CREATE INDEX IF NOT EXISTS idx_messages_device ON messages(device_id)",
    "CREATE INDEX IF NOT EXISTS idx_messages_timestamp ON messages(timestamp)",
    "CREATE INDEX IF NOT EXISTS idx_messages_media_type ON messages(media_type)",
    "CREATE INDEX IF NOT EXISTS idx_messages_sender ON messages(sender)",
    "CREATE INDEX IF NOT EXISTS idx_chats_last_message ON chats(last_message_time)",
    "CREATE INDEX IF NOT EXISTS idx_chats_name ON chats(name)",
    "CREATE INDEX IF NOT EXISTS idx_chats_device ON chats(device_id)",
    "CREATE INDEX IF NOT EXISTS idx_devices_created_at ON devices(created_at)",
    "ALTER TABLE chats ADD COLUMN archived BOOLEAN DEFAULT FALSE;",
    "CREATE INDEX IF NOT EXISTS idx_chats_archived ON chats(archived)",
    "ALTER TABLE messages ADD COLUMN call_metadata TEXT DEFAULT ''",
    "ALTER TABLE messages ADD COLUMN referral_metadata TEXT DEFAULT ''",
    """CREATE TABLE IF NOT EXISTS message_reactions (
        message_id VARCHAR(255) NOT NULL,
        chat_jid VARCHAR(255) NOT NULL,
        device_id VARCHAR(255) NOT NULL DEFAULT '',
        reactor_jid VARCHAR(255) NOT NULL,
        emoji TEXT NOT NULL DEFAULT '',
        is_from_me BOOLEAN DEFAULT FALSE,
        reaction_timestamp TIMESTAMP NOT NULL,
        created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        PRIMARY KEY (message_id, reactor_jid, device_id)
    )""",
    "ALTER TABLE messages ADD COLUMN direct_path TEXT DEFAULT ''",
    "ALTER TABLE devices ADD COLUMN webhook_url TEXT DEFAULT NULL",
    "ALTER TABLE devices ADD COLUMN webhook_secret TEXT DEFAULT ''",
    "ALTER TABLE devices ADD COLUMN webhook_events TEXT DEFAULT ''",
    "ALTER TABLE devices ADD COLUMN webhook_insecure_skip_verify BOOLEAN DEFAULT FALSE",
    "ALTER TABLE devices ADD COLUMN ad_jid VARCHAR(255) DEFAULT ''",
)


def gowa_time(seconds: float) -> str:
    """A time as GoWA's SQLite driver writes it (Go's 2006-01-02 15:04:05.999999999-07:00)."""
    whole = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
    return f"{whole}.{int(seconds % 1 * 1e9):09d}+00:00"


def merge_stores(stores: list[Path], target: Path) -> None:
    """One whatsmeow store holding every device of ``stores``, as GoWA v8+ keeps them."""
    shutil.copyfile(stores[0], target)
    db = sqlite3.connect(target)
    db.execute("PRAGMA journal_mode=DELETE")
    tables = [
        row[0]
        for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if row[0] != "whatsmeow_version"
    ]
    for other in stores[1:]:
        db.execute("ATTACH DATABASE ? AS other", (str(other),))
        with db:
            for table in tables:
                db.execute(f"INSERT OR IGNORE INTO {table} SELECT * FROM other.{table}")
        db.execute("DETACH DATABASE other")
    db.close()


def device_jid(store: Path) -> str:
    db = sqlite3.connect(store)
    try:
        ((jid,),) = db.execute("SELECT jid FROM whatsmeow_device").fetchall()
        ((version,),) = db.execute("SELECT version FROM whatsmeow_version").fetchall()
    finally:
        db.close()
    assert version == NEONIZE_STORE_VERSION, "neonize's whatsmeow changed its store version"
    return jid


def fill_chat_storage(path: Path, devices: dict[str, tuple[str, str, str | None]]) -> float:
    """GoWA's chat storage with a registry row per device, one idle slot, and history;
    returns the time of the history's first message."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")  # GoWA's default (CHAT_STORAGE_ENABLE_WAL)
    db.execute("CREATE TABLE schema_info (version INTEGER PRIMARY KEY, updated_at TIMESTAMP)")
    for number, statement in enumerate(GOWA_CHATSTORAGE_MIGRATIONS, 1):
        db.execute(statement)
        db.execute("INSERT INTO schema_info (version) VALUES (?)", (number,))
    start = time.time() - 86400
    with db:
        db.execute("INSERT INTO devices (device_id, display_name) VALUES ('spare', 'not paired')")
        for device_id, (ad_jid, peer, hook) in devices.items():
            jid = ad_jid.split(":")[0] + "@s.whatsapp.net"
            db.execute(
                "INSERT INTO devices (device_id, display_name, jid, ad_jid, webhook_url, "
                "webhook_secret) VALUES (?, ?, ?, ?, ?, ?)",
                (device_id, device_id, jid, ad_jid, hook, "device-secret" if hook else ""),
            )
            chat = f"{peer}@s.whatsapp.net"
            db.execute(
                "INSERT INTO chats (jid, device_id, name, last_message_time) VALUES (?, ?, ?, ?)",
                (chat, jid, f"chat of {device_id}", gowa_time(start + 60)),
            )
            for n in range(3):
                from_me = n % 2 == 0
                db.execute(
                    "INSERT INTO messages (id, chat_jid, device_id, sender, content, timestamp, "
                    "is_from_me, media_type, filename, file_length) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        f"OLD{device_id}{n}",
                        chat,
                        jid,
                        jid if from_me else chat,
                        f"old message {n} of {device_id}",
                        gowa_time(start + n),
                        from_me,
                        "document" if n == 2 else "",
                        "report.pdf" if n == 2 else "",
                        1234 if n == 2 else 0,
                    ),
                )
            db.execute(
                "INSERT INTO message_reactions (message_id, chat_jid, device_id, reactor_jid, "
                "emoji, reaction_timestamp) VALUES (?, ?, ?, ?, ?, ?)",
                (f"OLD{device_id}0", chat, jid, chat, "👍", gowa_time(start + 5)),
            )
    db.close()
    return start


def add_media_row(chat_storage: Path, session: Path, ad_jid: str) -> None:
    """The document Carol sent, as GoWA stores a media message: what ExtractMediaInfo
    takes from the protobuf (here the one the paired session received)."""
    db = sqlite3.connect(session / "chats.db")
    ((raw, stamp),) = db.execute("SELECT raw, timestamp FROM messages WHERE id = 'DOCQ3'")
    db.close()
    document = e2e.Message.FromString(raw).documentMessage
    db = sqlite3.connect(chat_storage)
    with db:
        db.execute(
            "INSERT INTO messages (id, chat_jid, device_id, sender, content, timestamp, "
            "media_type, filename, url, media_key, file_sha256, file_enc_sha256, file_length, "
            "direct_path) VALUES ('DOCQ3', ?, ?, ?, '', ?, 'document', ?, ?, ?, ?, ?, ?, ?)",
            (
                f"{CAROL}@s.whatsapp.net",
                ad_jid.split(":")[0] + "@s.whatsapp.net",
                f"{CAROL}@s.whatsapp.net",
                gowa_time(stamp),
                document.fileName,
                document.URL,
                document.mediaKey,
                document.fileSHA256,
                document.fileEncSHA256,
                document.fileLength,
                document.directPath,
            ),
        )
    db.close()


def gowa(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gowa_py", "import", "gowa", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )


@dataclass(frozen=True)
class Installation:
    storages: Path  # GoWA v9's storages/ folder
    stores: list[Path]  # the paired sessions' own stores, merged into storages/whatsapp.db
    jids: list[str]


@pytest.fixture(scope="module")
def gowa_install(sandbox, tmp_path_factory):
    """A stopped GoWA v9's storages/ folder: devices alice-dev and bob-dev, paired."""
    new_phone(sandbox, ALICE, "Alice")
    new_phone(sandbox, BOB, "Bob")
    new_phone(sandbox, CAROL, "Carol")
    first = Gateway(
        tmp_path_factory.mktemp("first") / "data",
        env=SUBPROCESS_WORKERS,
        args=["--sandbox", sandbox.url],
    )
    first.start()
    try:
        pair(first, sandbox, "a", ALICE)
        pair(first, sandbox, "b", BOB)
        watcher = EventWatcher(first.http.base.replace("http", "ws") + "/api/dashboard/events")
        try:
            for sender, peer, receiver in (("a", BOB, "b"), ("b", ALICE, "a")):
                status, body = first.http.post(
                    f"/api/{sender}/send/message", {"phone": peer, "message": "before"}
                )
                assert status == 200, body
                message_id = body["results"]["message_id"]
                watcher.wait(is_event("message", receiver, id=message_id), 10, "delivery")
            status, body = sandbox.api(
                "POST",
                f"/sim/phones/{CAROL}/send-document",
                {"to": ALICE, "filename": "q3.pdf", "mimetype": "application/pdf",
                 "data": base64.b64encode(DOCUMENT).decode(), "id": "DOCQ3"},
            )  # fmt: skip
            assert status == 200, body
            watcher.wait(is_event("message", "a", id="DOCQ3"), 10, "the document")
        finally:
            watcher.close()
        assert first.stop() == 0
    finally:
        first.cleanup()
    storages = tmp_path_factory.mktemp("gowa") / "storages"
    storages.mkdir()
    stores = [first.data_dir / "sessions" / name / "whatsmeow.db" for name in ("a", "b")]
    jids = [device_jid(store) for store in stores]
    merge_stores(stores, storages / "whatsapp.db")
    fill_chat_storage(
        storages / "chatstorage.db",
        {"alice-dev": (jids[0], BOB, "HOOK"), "bob-dev": (jids[1], ALICE, None)},
    )
    add_media_row(storages / "chatstorage.db", first.data_dir / "sessions" / "a", jids[0])
    return Installation(storages, stores, jids)


def test_bad_sources_are_refused_and_nothing_is_written(gowa_install, tmp_path):
    gowa_storages = gowa_install.storages
    data = tmp_path / "data"
    result = gowa(tmp_path, "--data-dir", data)
    assert result.returncode == 1
    assert "is not a GoWA storages/ folder" in result.stderr
    holder = sqlite3.connect(gowa_storages / "chatstorage.db")
    try:
        holder.execute("SELECT COUNT(*) FROM messages").fetchone()
        result = gowa(gowa_storages, "--data-dir", data)
    finally:
        holder.close()
    assert result.returncode == 1
    assert "GoWA is still running" in result.stderr
    assert not (data / "sessions").exists()
    postgres = {**os.environ, "GOWA_DATABASE_URL": "postgresql://gowa@127.0.0.1:1/gowa"}
    result = gowa(gowa_storages, "--data-dir", data, env=postgres)
    assert result.returncode == 1
    assert "cannot open the gateway's PostgreSQL database" in result.stderr
    result = gowa(gowa_storages, "--data-dir", data, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "session alice-dev" in result.stdout and "session bob-dev" in result.stdout
    assert "'spare' has no login" in result.stdout
    assert not (data / "sessions").exists() and not (data / "gowa.db").exists()


def test_imported_sessions_connect_without_qr_and_keep_history(
    sandbox, gowa_install, tmp_path_factory
):
    gowa_storages = gowa_install.storages
    receiver = WebhookReceiver("device-secret").start()
    global_hook = WebhookReceiver("global-secret").start()
    hook_url = receiver.url
    db = sqlite3.connect(gowa_storages / "chatstorage.db")
    with db:
        db.execute("UPDATE devices SET webhook_url = ? WHERE webhook_url = 'HOOK'", (hook_url,))
    db.close()
    data = tmp_path_factory.mktemp("second") / "data"
    env = {
        **os.environ,
        "WHATSAPP_WEBHOOK": global_hook.url,
        "WHATSAPP_WEBHOOK_SECRET": "global-secret",
        "WHATSAPP_AUTO_MARK_READ": "true",
    }
    result = gowa(gowa_storages, "--data-dir", data, "--with-webhooks", "--with-settings", env=env)
    assert result.returncode == 0, result.stderr
    assert "imported 2 session(s): alice-dev, bob-dev" in result.stdout
    again = gowa(gowa_storages, "--data-dir", data)
    assert again.returncode == 1 and "already exists" in again.stderr
    assert sorted(p.name for p in (data / "sessions").iterdir()) == ["alice-dev", "bob-dev"]

    local_hooks = {**SUBPROCESS_WORKERS, "GOWA_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8"}
    second = Gateway(data, env=local_hooks, args=["--sandbox", sandbox.url])
    second.start()
    watcher = EventWatcher(second.http.base.replace("http", "ws") + "/api/dashboard/events")
    try:
        for session_id, phone in (("alice-dev", ALICE), ("bob-dev", BOB)):
            session = second.wait_status(session_id, {"CONNECTED"}, timeout=30)
            assert session["me"]["jid"] == f"{phone}@s.whatsapp.net"
        assert not watcher.find(lambda e: e["event"] == "session.qr")
        busy = gowa(gowa_storages, "--data-dir", data, "--dry-run")
        assert busy.returncode == 1 and "stop the gateway" in busy.stderr
        for sender, peer, receiving in (
            ("alice-dev", BOB, "bob-dev"),
            ("bob-dev", ALICE, "alice-dev"),
        ):
            status, body = second.http.post(
                f"/api/{sender}/send/message", {"phone": peer, "message": f"after, {sender}"}
            )
            assert status == 200, body
            message_id = body["results"]["message_id"]
            got = watcher.wait(is_event("message", receiving, id=message_id), 10, "delivery")
            assert got["payload"]["body"] == f"after, {sender}"
        for phone in (ALICE, BOB):  # each device connected once at a time, never twice
            status, listed = sandbox.api("GET", f"/sim/phones/{phone}")
            assert [d["replaced"] for d in listed["devices"]] == [0], listed
        status, body = second.http.get(
            f"/api/alice-dev/chat/{BOB}@s.whatsapp.net/messages?limit=50"
        )
        assert status == 200, body
        texts = [item["content"] for item in body["results"]["data"]]
        assert {f"old message {n} of alice-dev" for n in range(3)} <= set(texts)
        assert not any(text.startswith("old message") and "bob-dev" in text for text in texts)
        assert "after, bob-dev" in texts
        document = next(i for i in body["results"]["data"] if i["id"] == "OLDalice-dev2")
        assert document["media_type"] == "document" and document["filename"] == "report.pdf"
        status, body = second.http.get(
            f"/api/alice-dev/message/DOCQ3/download?phone={CAROL}", timeout=60
        )
        assert status == 200, body
        assert Path(body["results"]["file_path"]).read_bytes() == DOCUMENT
        status, body = second.http.post(
            "/api/alice-dev/message/OLDalice-dev1/forward", {"phone": CAROL}
        )
        assert status == 200, body
        hooks = {
            sid: [h["url"] for h in second.session(sid)["config"]["webhooks"]]
            for sid in ("alice-dev", "bob-dev")
        }
        assert hooks == {"alice-dev": [hook_url], "bob-dev": [global_hook.url]}
        config = second.session("bob-dev")["config"]
        assert (config["auto_mark_read"], config["presence_on_connect"]) == (True, "unavailable")
        wait_until(lambda: receiver.items("message"), 10, what="alice-dev's webhook")
        wait_until(lambda: global_hook.items("message"), 10, what="bob-dev's webhook")
        assert all(item.signature_ok for item in receiver.items() + global_hook.items())
    finally:
        watcher.close()
        second.cleanup()
        receiver.close()
        global_hook.close()


#: GoWA v7's chat storage (v7.10.0, sqlite_repository.go getMigrations): one device, no
#: device_id column, no device registry.
GOWA_V7_CHATSTORAGE = """
CREATE TABLE chats (
    jid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    last_message_time TIMESTAMP NOT NULL,
    ephemeral_expiration INTEGER DEFAULT 0,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE messages (
    id TEXT NOT NULL,
    chat_jid TEXT NOT NULL,
    sender TEXT NOT NULL,
    content TEXT,
    timestamp TIMESTAMP NOT NULL,
    is_from_me BOOLEAN DEFAULT FALSE,
    media_type TEXT,
    filename TEXT,
    url TEXT,
    media_key BLOB,
    file_sha256 BLOB,
    file_enc_sha256 BLOB,
    file_length INTEGER DEFAULT 0,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id, chat_jid),
    FOREIGN KEY (chat_jid) REFERENCES chats(jid) ON DELETE CASCADE
);
CREATE INDEX idx_messages_id ON messages(id);
"""


def rows(path: Path, query: str, *args: object) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return sorted(db.execute(query, args).fetchall())
    finally:
        db.close()


def test_separate_keys_store_and_remove_from_source(gowa_install, tmp_path):
    """GoWA with DB_KEYS_URI keeps the Signal keys in a second store: the session gets
    them from there; --remove-from-source then deletes the devices from all three files."""
    main, keys, chats = tmp_path / "main.db", tmp_path / "keys.db", tmp_path / "chats.db"
    shutil.copyfile(gowa_install.storages / "whatsapp.db", main)
    shutil.copyfile(gowa_install.storages / "whatsapp.db", keys)
    shutil.copyfile(gowa_install.storages / "chatstorage.db", chats)
    key_tables = ("whatsmeow_identity_keys", "whatsmeow_sessions", "whatsmeow_pre_keys")
    for path, keep in ((main, False), (keys, True)):
        db = sqlite3.connect(path)
        with db:
            tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            for (table,) in tables.fetchall():
                if (table in key_tables) != keep and table != "whatsmeow_device":
                    db.execute(f"DELETE FROM {table}")
        db.close()
    data = tmp_path / "data"
    result = gowa(
        "--data-dir", data, "--db-uri", f"file:{main}?_foreign_keys=on",
        "--keys-db-uri", f"file:{keys}", "--chat-storage-uri", f"file:{chats}",
        "--remove-from-source",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for session_id, store, jid in zip(
        ("alice-dev", "bob-dev"), gowa_install.stores, gowa_install.jids, strict=True
    ):
        imported = data / "sessions" / session_id / "whatsmeow.db"
        for table in (*key_tables, "whatsmeow_app_state_sync_keys"):
            query = f"SELECT * FROM {table}"
            assert rows(imported, query) == rows(store, query), table
        assert rows(imported, "SELECT jid FROM whatsmeow_device") == [(jid,)]
    assert rows(main, "SELECT jid FROM whatsmeow_device") == []
    assert rows(keys, "SELECT our_jid FROM whatsmeow_sessions") == []
    assert rows(chats, "SELECT device_id FROM messages") == []
    assert rows(chats, "SELECT device_id FROM devices") == [("spare",)]


def test_v7_installation_becomes_the_default_session(gowa_install, tmp_path):
    storages = tmp_path / "storages"
    storages.mkdir()
    shutil.copyfile(gowa_install.stores[0], storages / "whatsapp.db")
    db = sqlite3.connect(storages / "chatstorage.db")
    db.executescript(GOWA_V7_CHATSTORAGE)
    sent = 1_700_000_000.25
    with db:
        db.execute(
            "INSERT INTO chats (jid, name, last_message_time) VALUES (?, 'Bob', ?)",
            (f"{BOB}@s.whatsapp.net", gowa_time(sent)),
        )
        db.execute(
            "INSERT INTO messages (id, chat_jid, sender, content, timestamp, is_from_me) "
            "VALUES ('V7', ?, ?, 'from v7', ?, 0)",
            (f"{BOB}@s.whatsapp.net", BOB, gowa_time(sent)),
        )
    db.close()
    data = tmp_path / "data"
    result = gowa(storages, "--data-dir", data, "--session-id", "default")
    assert result.returncode == 0, result.stderr
    history = data / "sessions" / "default" / "chats.db"
    assert rows(history, "SELECT id, sender_jid, content, timestamp FROM messages") == [
        ("V7", f"{BOB}@s.whatsapp.net", "from v7", sent)
    ]
    assert rows(history, "SELECT jid, name FROM chats") == [(f"{BOB}@s.whatsapp.net", "Bob")]
    twice = gowa(storages, "--data-dir", data, "--session-id", "again")
    assert twice.returncode == 1
    assert f"{gowa_install.jids[0]} is logged in here already, as session default" in twice.stderr
    assert not (data / "sessions" / "again").exists()


def test_a_store_newer_than_neonize_is_refused(gowa_install, tmp_path):
    storages = tmp_path / "storages"
    storages.mkdir()
    shutil.copyfile(gowa_install.stores[0], storages / "whatsapp.db")
    db = sqlite3.connect(storages / "whatsapp.db")
    with db:
        db.execute("UPDATE whatsmeow_version SET version = 99, compat = 99")
    db.close()
    data = tmp_path / "data"
    result = gowa(storages, "--data-dir", data)
    assert result.returncode == 1
    assert "newer than the 15 of this gowa-py's neonize" in result.stderr
    assert not (data / "sessions").exists()


def test_into_a_gateway_on_postgresql(sandbox, gowa_install, test_database, tmp_path):
    """The same installation into a gateway that keeps its sessions in PostgreSQL: each
    device's store and history in its session's schema. (Both devices come back from the
    same snapshot, so their Signal sessions with each other still agree.)"""
    data = tmp_path / "data"
    env = {**os.environ, "GOWA_DATABASE_URL": test_database.url}
    result = gowa(gowa_install.storages, "--data-dir", data, env=env)
    assert result.returncode == 0, result.stderr
    assert not list((data / "sessions").glob("*/*.db"))
    gateway = Gateway(
        data,
        env={**SUBPROCESS_WORKERS, "GOWA_DATABASE_URL": test_database.url},
        args=["--sandbox", sandbox.url],
    )
    gateway.start()
    watcher = EventWatcher(gateway.http.base.replace("http", "ws") + "/api/dashboard/events")
    try:
        for session_id in ("alice-dev", "bob-dev"):
            gateway.wait_status(session_id, {"CONNECTED"}, timeout=30)
        assert not watcher.find(lambda e: e["event"] == "session.qr")
        status, body = gateway.http.post(
            "/api/alice-dev/send/message", {"phone": BOB, "message": "on postgresql"}
        )
        assert status == 200, body
        message_id = body["results"]["message_id"]
        watcher.wait(is_event("message", "bob-dev", id=message_id), 10, "delivery")
        status, body = gateway.http.get(f"/api/bob-dev/chat/{ALICE}@s.whatsapp.net/messages")
        assert status == 200, body
        texts = {item["content"] for item in body["results"]["data"]}
        assert {"old message 0 of bob-dev", "on postgresql"} <= texts
    finally:
        watcher.close()
        gateway.cleanup()
        test_database.empty()  # the sessions' schemas and their roles


def test_a_failure_midway_leaves_nothing(gowa_install, test_database, tmp_path):
    """bob-dev's schema is found taken only while importing (alice-dev is in by then):
    alice-dev goes again, the schema that was there stays."""
    with psycopg.connect(test_database.url, autocommit=True) as conn:
        conn.execute('CREATE SCHEMA "gowa_s_bob-dev"')
        conn.execute('CREATE TABLE "gowa_s_bob-dev".keep (x int)')
    try:
        data = tmp_path / "data"
        env = {**os.environ, "GOWA_DATABASE_URL": test_database.url}
        result = gowa(gowa_install.storages, "--data-dir", data, env=env)
        assert result.returncode == 1
        assert "has a schema gowa_s_bob-dev already" in result.stderr, result.stderr
        with psycopg.connect(test_database.url) as conn:
            schemas = {
                row[0]
                for row in conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'gowa_s_%'"
                )
            }
            registered = conn.execute("SELECT id FROM gowa.sessions").fetchall()
            kept = conn.execute('SELECT count(*) FROM "gowa_s_bob-dev".keep').fetchone()
        assert "gowa_s_alice-dev" not in schemas and "gowa_s_bob-dev" in schemas
        assert ("alice-dev",) not in registered and kept == (0,)
        assert not list((data / "sessions").iterdir())
    finally:
        test_database.empty()
