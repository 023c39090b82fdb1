"""An archive's SQLite stores into a session's PostgreSQL schema: whatsmeow's tables are
rebuilt from the file's description, never from its SQL text, and anything off the lists
refuses the whole import, leaving no schema behind."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from gowa_py.errors import GowaError
from gowa_py.protocol import ErrorCode
from gowa_py.storage import pg_import


def _store(folder: Path, *statements: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(folder / "whatsmeow.db") as db:
        db.execute("CREATE TABLE whatsmeow_version (version INTEGER, compat INTEGER)")
        db.execute("INSERT INTO whatsmeow_version VALUES (8, 8)")
        db.execute(
            "CREATE TABLE whatsmeow_device (jid TEXT PRIMARY KEY, facebook_uuid uuid, "
            "initialized BOOLEAN NOT NULL DEFAULT false, key bytea NOT NULL)"
        )
        db.execute(
            "CREATE TABLE whatsmeow_pre_keys (jid TEXT, key_id INTEGER, uploaded BOOLEAN, "
            "PRIMARY KEY (jid, key_id), FOREIGN KEY (jid) REFERENCES whatsmeow_device(jid) "
            "ON DELETE CASCADE ON UPDATE CASCADE)"
        )
        db.execute("CREATE INDEX whatsmeow_pre_keys_uploaded ON whatsmeow_pre_keys (uploaded)")
        db.execute(
            "INSERT INTO whatsmeow_device VALUES ('1@s.whatsapp.net', ?, 1, randomblob(32))",
            [bytes(range(16))],
        )
        db.execute("INSERT INTO whatsmeow_pre_keys VALUES ('1@s.whatsapp.net', 7, 0)")
        for statement in statements:
            db.execute(statement)
    return folder


def test_types_keys_and_rows_arrive(tmp_path, test_database):
    folder = _store(tmp_path / "s")
    try:
        with psycopg.connect(test_database.url, autocommit=True) as conn:
            pg_import.import_session(conn, "moved", folder)
            row = conn.execute(
                "SELECT facebook_uuid::text, initialized, length(key) "
                "FROM gowa_s_moved.whatsmeow_device"
            ).fetchone()
            assert row == ("00010203-0405-0607-0809-0a0b0c0d0e0f", True, 32)
            assert conn.execute("SELECT * FROM gowa_s_moved.whatsmeow_version").fetchall() == [
                (8, 8)
            ]
            conn.execute("DELETE FROM gowa_s_moved.whatsmeow_device")  # the cascade came too
            assert (
                conn.execute("SELECT count(*) FROM gowa_s_moved.whatsmeow_pre_keys").fetchone()[0]
                == 0
            )
            with pytest.raises(GowaError) as raised:
                pg_import.import_session(conn, "moved", folder)
            assert raised.value.code is ErrorCode.SESSION_EXISTS
    finally:
        test_database.empty()


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE whatsmeow_x (a TEXT DEFAULT (pg_sleep(5)))",
        'CREATE TABLE "whatsmeow_x; DROP SCHEMA gowa CASCADE" (a TEXT)',
        'CREATE TABLE whatsmeow_x ("a) ; DROP SCHEMA gowa; --" TEXT)',
        "CREATE TABLE whatsmeow_x (a money)",
    ],
)
def test_anything_off_the_lists_refuses_the_import(tmp_path, test_database, statement):
    folder = _store(tmp_path / "s", statement)
    try:
        with psycopg.connect(test_database.url, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA IF NOT EXISTS gowa")
            with pytest.raises(GowaError) as raised:
                pg_import.import_session(conn, "moved", folder)
            assert raised.value.code is ErrorCode.ARCHIVE_INVALID
        assert test_database.schemas() == ["gowa"]
    finally:
        test_database.empty()


def _describe(path: Path) -> dict[str, object]:
    """Each table's columns (name, type, primary-key position), foreign keys and rows."""
    with sqlite3.connect(path) as db:
        names = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            name: (
                [(r[1], r[2].lower(), r[5]) for r in db.execute(f'PRAGMA table_info("{name}")')],
                sorted(r[2:7] for r in db.execute(f'PRAGMA foreign_key_list("{name}")')),
                sorted(db.execute(f'SELECT * FROM "{name}"').fetchall()),
            )
            for name in names
        }


def test_export_gives_back_what_was_imported(tmp_path, test_database):
    from gowa_py.storage import pg_export

    folder = _store(tmp_path / "s")
    out = tmp_path / "out"
    out.mkdir()
    try:
        with psycopg.connect(test_database.url, autocommit=True) as conn:
            pg_import.import_session(conn, "moved", folder)
            pg_export.export_session(conn, "moved", out)
    finally:
        test_database.empty()
    original, exported = _describe(folder / "whatsmeow.db"), _describe(out / "whatsmeow.db")
    # UUIDs come back as text, booleans as 0/1 as SQLite stores them
    device = original["whatsmeow_device"]
    original["whatsmeow_device"] = (
        device[0],
        device[1],
        [(jid, "00010203-0405-0607-0809-0a0b0c0d0e0f", *rest) for jid, _, *rest in device[2]],
    )
    assert exported == original
    with sqlite3.connect(out / "chats.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] >= 1
