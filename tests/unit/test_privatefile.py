from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from gowa_py.privatefile import private_sqlite

WORKER_UID = 70_999


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_root_creates_a_database_for_the_folder_owner(tmp_path: Path) -> None:
    """The gateway (root) opening a session's outbox must not take the worker's store from
    it: the worker, under its own uid, then got "attempt to write a readonly database"."""
    folder = tmp_path / "session"
    folder.mkdir()
    os.chown(folder, WORKER_UID, WORKER_UID)
    path = folder / "chats.db"
    private_sqlite(path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.execute("INSERT INTO t VALUES (1)")
    db.commit()
    for name in ("chats.db", "chats.db-wal", "chats.db-shm"):
        info = os.stat(folder / name)
        assert (info.st_uid, info.st_gid) == (WORKER_UID, WORKER_UID), name
        assert info.st_mode & 0o777 == 0o600, name
    db.close()


def test_a_folder_of_our_own_keeps_our_ownership(tmp_path: Path) -> None:
    path = tmp_path / "gowa.db"
    private_sqlite(path)
    info = os.stat(path)
    assert (info.st_uid, info.st_mode & 0o777) == (os.geteuid(), 0o600)
