"""The GoWA importer's readers: GoWA's times and URIs, its webhook settings, and the
in-use check that keeps a login from being copied while GoWA runs (tests/e2e has the
import itself, on a store real neonize clients paired)."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gowa_py.importers import ImportRefused
from gowa_py.importers.gowa import gowa_device
from gowa_py.importers.gowa_chats import GowaDevice, seconds
from gowa_py.importers.gowa_settings import Carry, session_config
from gowa_py.importers.source import SourceFiles, check_idle, snapshot, sqlite_path
from gowa_py.importers.whatsmeow_store import StoreDevice
from gowa_py.models import SessionConfig
from tests.procs import wait_until

MOMENT = 1796119200.0  # 2026-12-01 10:00:00 UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01 10:00:00.123456789+00:00", MOMENT + 0.123456789),
        ("2026-12-01 17:00:00+07:00", MOMENT),
        ("2026-12-01T10:00:00Z", MOMENT),
        ("2026-12-01 10:00:00.5 +0000 UTC", MOMENT + 0.5),
        ("2026-12-01 10:00:00", MOMENT),
        (MOMENT, MOMENT),
        (int(MOMENT * 1000), MOMENT),
    ],
)
def test_gowa_times_become_unix_seconds(text, expected):
    assert seconds(text) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("value", [None, "", "yesterday"])
def test_unreadable_times_are_none(value):
    assert seconds(value) is None


def test_gowa_database_uris_name_their_files():
    assert sqlite_path("file:storages/whatsapp.db?_foreign_keys=on") == Path("storages/whatsapp.db")
    assert sqlite_path("file:///srv/gowa/keys.db") == Path("/srv/gowa/keys.db")
    assert sqlite_path("/srv/gowa/chatstorage.db") == Path("/srv/gowa/chatstorage.db")
    with pytest.raises(
        ImportRefused, match=r"gowa:\*\*\*\*@db/gowa\?sslmode=disable is not an SQLite file"
    ):
        sqlite_path("postgres://gowa:pw@db/gowa?sslmode=disable")
    with pytest.raises(ImportRefused, match="unsupported database URI"):
        sqlite_path("mysql://gowa@db/gowa")


def test_webhooks_follow_gowa_precedence():
    env = {
        "WHATSAPP_WEBHOOK": "https://a.example/hook, https://b.example/hook",
        "WHATSAPP_WEBHOOK_EVENTS": "message,message.ack",
    }
    hooks = session_config(Carry(env, webhooks=True), None).webhooks
    assert [h.url for h in hooks] == ["https://a.example/hook", "https://b.example/hook"]
    assert {h.secret for h in hooks} == {"secret"}  # GoWA's default secret
    assert hooks[0].events == ["message", "message.ack"]
    own = GowaDevice("sales", "1@s.whatsapp.net", webhook_url="https://c.example/x")
    carry = Carry({**env, "WHATSAPP_WEBHOOK_SECRET": "s3"}, webhooks=True)
    (hook,) = session_config(carry, own).webhooks
    assert (hook.url, hook.secret, hook.events) == ("https://c.example/x", "s3", hook.events)
    assert session_config(Carry(env), own) == SessionConfig()
    with pytest.raises(ImportRefused, match="cannot be carried over"):
        session_config(Carry({"WHATSAPP_WEBHOOK": "ftp://nope"}, webhooks=True), None)


def test_behaviour_settings_keep_gowa_defaults():
    config = session_config(Carry({}, behaviour=True), None)
    assert config.presence_on_connect == "unavailable"  # GoWA's, not gowa-py's default
    assert (config.auto_mark_read, config.auto_download_media) == (False, True)
    env = {
        "WHATSAPP_AUTO_REPLY": "away",
        "WHATSAPP_AUTO_MARK_READ": "true",
        "WHATSAPP_AUTO_REJECT_CALL": "1",
        "WHATSAPP_PRESENCE_ON_CONNECT": "none",
        "WHATSAPP_PROXY": "socks5://user:pw@proxy.example:1080",
    }
    config = session_config(Carry(env, behaviour=True), None)
    assert (config.auto_reply, config.auto_mark_read, config.auto_reject_call) == (
        "away",
        True,
        True,
    )
    assert (config.presence_on_connect, config.proxy) == ("none", env["WHATSAPP_PROXY"])
    with pytest.raises(ImportRefused, match="WHATSAPP_AUTO_MARK_READ='yes'"):
        session_config(Carry({"WHATSAPP_AUTO_MARK_READ": "yes"}, behaviour=True), None)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_database_open_elsewhere_is_in_use_and_never_touched(tmp_path):
    store = tmp_path / "whatsapp.db"
    db = sqlite3.connect(store)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.close()
    before = _digest(store)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
            "db.execute('SELECT * FROM t').fetchall(); print('open', flush=True); "
            "sys.stdin.read()",
            str(store),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        with pytest.raises(ImportRefused, match=f"GoWA is still running .*{holder.pid}"):
            check_idle(SourceFiles(store))
    finally:
        holder.communicate("", timeout=10)
    wait_until(lambda: not Path(f"{store}-shm").exists(), 5, what="the holder's -shm gone")
    check_idle(SourceFiles(store))
    copy = tmp_path / "copy"
    copy.mkdir()
    snapshot(SourceFiles(store), copy)
    assert _digest(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy", "whatsapp.db"]


def test_store_devices_find_their_gowa_device_id():
    """v9.2 keeps the full JID (ad_jid); earlier v8/v9 only the number, which names a
    device only while no other slot has the same number."""
    store = StoreDevice("15550001:7@s.whatsapp.net")
    exact = GowaDevice("sales", "15550001@s.whatsapp.net", ad_jid=store.jid)
    other = GowaDevice("old", "15550001@s.whatsapp.net", ad_jid="15550001:3@s.whatsapp.net")
    legacy = GowaDevice("support", "15550001@s.whatsapp.net")
    assert gowa_device(store, [other, exact, legacy]) == exact
    assert gowa_device(store, [other, legacy]) == legacy
    assert gowa_device(store, [legacy, GowaDevice("twin", legacy.jid)]) is None
    assert gowa_device(store, [other]) is None
