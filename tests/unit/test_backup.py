"""``gowa backup`` and ``gowa restore`` on real SQLite files: a copy taken while another
process keeps writing holds every row committed before it began; restore refuses what it
cannot trust (incomplete, damaged, newer, a data dir in use or not empty)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from gowa_py.archive import backup as bk
from gowa_py.archive import session as archive
from gowa_py.archive.manifest import ArchiveInvalid, ArchiveTooNew
from gowa_py.errors import GowaError
from gowa_py.serve import DataDirBusy, lock_data_dir
from gowa_py.storage.factory import sqlite_registry
from tests.unit.test_archive import _count, _make_session

WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA busy_timeout=5000")
n = 0
while True:
    conn.execute(
        "INSERT INTO messages (id, chat_jid, timestamp, created_at, updated_at) "
        "VALUES (?, 'w@s.whatsapp.net', 0, 0, 0)", [f"w{n}"])
    print(n, flush=True)
    n += 1
    time.sleep(0.002)
"""


def test_backup_under_writes_then_restore(tmp_path):
    data = tmp_path / "data"
    _make_session(data, "sales")
    _make_session(data, "support")
    (data / "sessions" / "support" / archive.EXPORTED).write_text("{}")
    chats = data / "sessions" / "sales" / "chats.db"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(chats)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        for _ in range(50):
            committed = int(writer.stdout.readline())
        manifest = bk.backup(data, tmp_path / "backup")
        time.sleep(0.05)
    finally:
        writer.kill()
        writer.wait()
    assert manifest.sessions == ["sales", "support"]
    restored = tmp_path / "restored"
    bk.restore(tmp_path / "backup", restored)
    with sqlite3.connect(restored / "sessions" / "sales" / "chats.db") as db:
        ids = {row[0] for row in db.execute("SELECT id FROM messages WHERE id LIKE 'w%'")}
    assert {f"w{n}" for n in range(committed + 1)} <= ids
    assert _count(restored / "sessions" / "support" / "whatsmeow.db", "whatsmeow_device") == 1
    assert archive.exported_mark(restored / "sessions" / "support") is not None
    registry = sqlite_registry(restored / "gowa.db")
    assert [r.id for r in registry.all()] == ["sales", "support"]
    registry.close()
    assert os.stat(restored / "gowa.db").st_mode & 0o777 == 0o600
    with sqlite3.connect(restored / "sessions" / "sales" / "chats.db") as db:
        (path,) = db.execute("SELECT media_path FROM messages WHERE id = 'm1'").fetchone()
    assert path == str(restored / "sessions" / "sales" / "media" / "image" / "abc123.jpg")


def test_backup_needs_a_data_dir_and_an_empty_target(tmp_path):
    with pytest.raises(GowaError, match="not a gowa-py data dir"):
        bk.backup(tmp_path / "nothing", tmp_path / "b")
    _make_session(tmp_path / "data")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("x")
    with pytest.raises(GowaError, match="not empty"):
        bk.backup(tmp_path / "data", tmp_path / "b")


@pytest.fixture
def backed_up(tmp_path):
    _make_session(tmp_path / "data")
    bk.backup(tmp_path / "data", tmp_path / "backup")
    return tmp_path / "backup"


def test_restore_refuses_a_non_empty_data_dir_unless_forced(tmp_path, backed_up):
    with pytest.raises(GowaError, match="not empty"):
        bk.restore(backed_up, tmp_path / "data")
    bk.restore(backed_up, tmp_path / "data", force=True)
    aside = [p for p in (tmp_path / "data").iterdir() if p.name.startswith("replaced-")]
    assert len(aside) == 1 and (aside[0] / "gowa.db").exists()
    assert _count(tmp_path / "data" / "sessions" / "sales" / "chats.db", "messages") == 50


def test_restore_refuses_an_incomplete_backup(tmp_path, backed_up):
    (backed_up / "backup.json").unlink()
    with pytest.raises(ArchiveInvalid, match="not a complete backup"):
        bk.restore(backed_up, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_restore_refuses_a_damaged_file(tmp_path, backed_up):
    media = backed_up / "sessions" / "sales" / "media" / "image" / "abc123.jpg"
    media.write_bytes(media.read_bytes()[:-1] + b"X")
    with pytest.raises(ArchiveInvalid, match="checksum"):
        bk.restore(backed_up, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_restore_refuses_a_newer_format_and_schema(tmp_path, backed_up):
    path = backed_up / "backup.json"
    original = path.read_text()
    path.write_text(json.dumps({**json.loads(original), "format_version": 9}))
    with pytest.raises(ArchiveTooNew, match="format 9"):
        bk.restore(backed_up, tmp_path / "fresh")
    path.write_text(original)
    with sqlite3.connect(backed_up / "gowa.db") as db:
        db.execute("PRAGMA user_version = 99")
    manifest = json.loads(original)
    size = (backed_up / "gowa.db").stat().st_size
    from gowa_py.archive import pack

    manifest["files"]["gowa.db"] = {"sha256": pack.sha256(backed_up / "gowa.db"), "size": size}
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArchiveTooNew, match="schema version 99"):
        bk.restore(backed_up, tmp_path / "fresh")


def test_restore_refuses_unsafe_names(tmp_path, backed_up):
    path = backed_up / "backup.json"
    manifest = json.loads(path.read_text())
    manifest["files"]["sessions/../../evil"] = {"sha256": "0" * 64, "size": 0}
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArchiveInvalid, match="unsafe"):
        bk.restore(backed_up, tmp_path / "fresh")


def test_restore_refuses_a_data_dir_in_use(tmp_path, backed_up):
    fd = lock_data_dir(tmp_path / "busy")
    try:
        with pytest.raises(DataDirBusy):
            bk.restore(backed_up, tmp_path / "busy")
    finally:
        os.close(fd)
    assert not (tmp_path / "busy" / "gowa.db").exists()


def test_backup_and_restore_refuse_a_postgresql_gateway(tmp_path):
    env = {**os.environ, "GOWA_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres"}
    for command in (["backup", str(tmp_path / "b")], ["restore", str(tmp_path)]):
        done = subprocess.run(
            [sys.executable, "-m", "gowa_py", *command, "--data-dir", str(tmp_path / "d")],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode != 0 and "pg_dump" in done.stderr, done.stderr
    assert not (tmp_path / "b").exists() and not (tmp_path / "d").exists()
