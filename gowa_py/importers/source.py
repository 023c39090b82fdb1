"""A GoWA installation's databases: found, checked idle, and copied before any read.

GoWA keeps its whatsmeow store in ``storages/whatsapp.db`` (``DB_URI``; or PostgreSQL,
read by :mod:`gowa_py.importers.pg_source`), optionally the
Signal keys in a second whatsmeow store (``DB_KEYS_URI``), and its chats and messages in
``storages/chatstorage.db`` (``CHAT_STORAGE_URI``). A login must be moved, never copied
while GoWA still uses it (the Signal ratchets advance with every message), so the import
refuses while any of the files is in use, and reads only a copy: opening the originals
could replay a journal into them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psutil

from gowa_py.importers import ImportRefused, pg_source
from gowa_py.models import mask_proxy

#: Where an idle WAL database's live connections hold a shared lock in its ``-shm``
#: (SQLite's unix VFS: the "DMS" byte after the eight WAL-index locks at 120).
_SHM_DMS_BYTE = 128
_SIDE_FILES = ("-wal", "-shm", "-journal")
#: Bytes 18-19 of an SQLite header: the file format versions, 2 for WAL.
_WAL_VERSIONS = b"\x02\x02"
#: The files' names in a default GoWA ``storages/`` folder.
STORE_FILE, CHATS_FILE = "whatsapp.db", "chatstorage.db"


@dataclass(frozen=True)
class SourceFiles:
    """The databases of one GoWA installation (``keys``/``chats``: None when it has none);
    a whatsmeow store is a file or a PostgreSQL URL."""

    store: Path | str
    keys: Path | str | None = None
    chats: Path | None = None

    def all(self) -> list[Path]:
        """The SQLite files among them."""
        return [p for p in (self.store, self.keys, self.chats) if isinstance(p, Path)]

    def urls(self) -> list[str]:
        """The PostgreSQL stores among them."""
        return [p for p in (self.store, self.keys) if isinstance(p, str)]


def shown(source: Path | str) -> str:
    """A file, or a URL without its password, for messages."""
    return str(source) if isinstance(source, Path) else str(mask_proxy(source))


def sqlite_path(uri: str) -> Path:
    """The file behind a GoWA ``DB_URI``-style value (``file:storages/whatsapp.db?...``,
    ``sqlite:...`` or a plain path); a PostgreSQL URI is refused."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if pg_source.is_postgres(uri):
        raise ImportRefused(f"{shown(uri)} is not an SQLite file (GoWA's chat storage is one)")
    if scheme in ("file", "sqlite", "sqlite3"):
        rest = uri.split(":", 1)[1].split("?", 1)[0]
        if rest.startswith("//"):  # file:///abs/path
            rest = urlsplit("file:" + rest).path
        return Path(unquote(rest)).expanduser()
    if scheme and len(scheme) > 1:
        raise ImportRefused(f"unsupported database URI {uri!r}: expected file:PATH or a path")
    return Path(uri).expanduser()


def locate(
    folder: Path | None,
    db_uri: str | None = None,
    keys_uri: str | None = None,
    chats_uri: str | None = None,
) -> SourceFiles:
    """GoWA's files from its ``storages/`` folder and/or explicit URIs; refuses a folder
    that holds no whatsmeow store."""
    store = _store(db_uri) if db_uri else (folder / STORE_FILE if folder else None)
    if store is None:
        raise ImportRefused("give GoWA's storages/ folder or --db-uri")
    if folder is not None and not folder.is_dir():
        raise ImportRefused(f"{folder} is not a folder")
    if isinstance(store, Path) and not store.is_file():
        where = f"{folder} is not a GoWA storages/ folder: it" if folder else str(store)
        raise ImportRefused(f"{where} has no whatsmeow store ({store.name} not found)")
    chats = sqlite_path(chats_uri) if chats_uri else (folder / CHATS_FILE if folder else None)
    if chats_uri and chats is not None and not chats.is_file():
        raise ImportRefused(f"chat storage {chats} not found")
    keys = _store(keys_uri) if keys_uri else None
    if isinstance(keys, Path) and not keys.is_file():
        raise ImportRefused(f"keys store {keys} not found")
    found = SourceFiles(store, keys, chats if chats is not None and chats.is_file() else None)
    for path in found.all():
        _check_sqlite(path)
    return found


def _store(uri: str) -> Path | str:
    """A whatsmeow store's file, or its PostgreSQL URL as given."""
    return uri if pg_source.is_postgres(uri) else sqlite_path(uri)


def _check_sqlite(path: Path) -> None:
    with path.open("rb") as file:
        if file.read(16) != b"SQLite format 3\x00":
            raise ImportRefused(f"{path} is not an SQLite database")


def _holders(paths: list[Path]) -> list[str]:
    """Other processes that have one of ``paths`` (or their side files) open; processes
    this user may not inspect are skipped (the lock checks still see them)."""
    wanted = {os.path.realpath(p) for path in paths for p in (path, *_side(path))}
    found = []
    for process in psutil.process_iter(["pid", "name"]):
        if process.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            for item in process.open_files():
                if os.path.realpath(item.path) in wanted:
                    found.append(f"{item.path} is open in process {process.pid} ({process.name()})")
    return found


def _side(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in _SIDE_FILES]


def _wal_connected(path: Path) -> bool:
    """Whether some process has a connection to the WAL database ``path`` (it holds the
    ``-shm`` DMS lock shared, so ours cannot take it exclusively)."""
    shm = path.with_name(path.name + "-shm")
    try:
        fd = os.open(shm, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS_BYTE, os.SEEK_SET)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, _SHM_DMS_BYTE, os.SEEK_SET)
        return False
    finally:
        os.close(fd)


def _locked(path: Path) -> bool:
    """Whether ``BEGIN EXCLUSIVE`` waits in vain on a rollback-journal database. Not
    tried with a journal or log beside the file (opening it would replay them), nor on a
    WAL database (:func:`_wal_connected` sees its connections, even idle ones)."""
    with path.open("rb") as file:
        if file.read(20)[18:20] == _WAL_VERSIONS:
            return False
    if any(side.exists() for side in _side(path)):
        return False
    connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True, timeout=0.5)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        connection.rollback()
        return False
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc)
    finally:
        connection.close()


def check_idle(files: SourceFiles) -> None:
    """Refuse while GoWA (or anything else) still uses the source databases."""
    for url in files.urls():
        pg_source.check_idle(url)
    reasons = _holders(files.all())
    for path in files.all():
        if _wal_connected(path):
            reasons.append(f"{path} has an open connection (its -shm is locked)")
        elif _locked(path):
            reasons.append(f"{path} is locked by a transaction")
    if reasons:
        raise ImportRefused(
            "GoWA is still running (" + "; ".join(reasons) + "): stop it first "
            "(docker stop, systemctl stop, Ctrl-C), then import again. A login is moved, "
            "never copied while in use."
        )


@dataclass(frozen=True)
class Snapshot:
    """The copies the import reads: SQLite files all, a PostgreSQL store's too."""

    store: Path
    keys: Path | None
    chats: Path | None


def snapshot(files: SourceFiles, into: Path) -> Snapshot:
    """Copies of the databases (with a log or journal left by a crash) in ``into``."""

    def copy(path: Path | str, name: str) -> Path:
        target = into / name
        if isinstance(path, str):
            pg_source.copy_to_sqlite(path, target)
            return target
        shutil.copyfile(path, target)
        for side in ("-wal", "-journal"):
            source = path.with_name(path.name + side)
            if source.exists():
                shutil.copyfile(source, target.with_name(name + side))
        return target

    return Snapshot(
        copy(files.store, "store.db"),
        copy(files.keys, "keys.db") if files.keys is not None else None,
        copy(files.chats, "chats.db") if files.chats is not None else None,
    )
