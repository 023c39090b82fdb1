"""Writing and reading a session archive: a gzipped tar of ``manifest.json`` and the
session's files (``session/whatsmeow.db``, ``session/chats.db``, ``session/media/...``).

Reading trusts nothing in the file: the manifest comes first and is checked before the
rest; every member must be a plain file or folder under ``session/`` with a name of safe
characters (no ``..``, no absolute path, no link or device), listed in the manifest with
its size; each is written by this code (never by ``tarfile.extract``) and its checksum
compared; a file missing, extra or cut short refuses the whole archive.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import re
import shutil
import tarfile
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from gowa_py import __version__
from gowa_py.archive import sqlite
from gowa_py.archive.manifest import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PREFIX,
    ArchivedSession,
    ArchiveInvalid,
    ArchiveTooNew,
    FileEntry,
    Manifest,
    decode,
    encode,
)
from gowa_py.storage import chats_schema

log = logging.getLogger("gowa.archive")

#: The databases of a session folder, copied with SQLite's online backup API.
DATABASES = ("whatsmeow.db", "chats.db")
#: Folders copied as they are (downloaded media); logs and the worker's tmp stay behind.
FOLDERS = ("media",)
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_CHUNK = 1 << 20
#: What reading a cut or garbled gzip stream raises.
_DAMAGED = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


def is_safe(relative: str) -> bool:
    """A name inside a session folder this code would have written itself."""
    parts = relative.split("/")
    if not all(_PART.fullmatch(part) and part not in (".", "..") for part in parts):
        return False
    return parts[0] in DATABASES if len(parts) == 1 else parts[0] in FOLDERS


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def snapshot(
    session_dir: Path, staging: Path, also: tuple[str, ...] = (), pages: int = sqlite.STEP_PAGES
) -> dict[str, FileEntry]:
    """Copy what an archive holds of ``session_dir`` (and the files named in ``also``)
    into ``staging``; the databases through the backup API, so a log not yet
    checkpointed is in the copy."""
    staging.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in DATABASES:
        if (session_dir / name).exists():
            sqlite.copy_database(session_dir / name, staging / name, pages)
    for name in also:
        if (session_dir / name).is_file():
            shutil.copyfile(session_dir / name, staging / name)
    for folder in FOLDERS:
        root = session_dir / folder
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            relative = path.relative_to(session_dir).as_posix()
            if path.is_symlink() or not path.is_file():
                continue
            if not is_safe(relative):
                log.warning("not archived (an unexpected name): %s", relative)
                continue
            target = staging / relative
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return entries(staging)


def entries(staging: Path) -> dict[str, FileEntry]:
    """The checksum and size of every file in ``staging``, by its name there."""
    return {
        path.relative_to(staging).as_posix(): FileEntry(sha256(path), path.stat().st_size)
        for path in sorted(staging.rglob("*"))
        if path.is_file()
    }


def schemas(folder: Path) -> dict[str, int | None]:
    """The schema versions of a session folder's databases (None: no such file)."""
    chats, store = folder / "chats.db", folder / "whatsmeow.db"
    return {
        "chats.db": sqlite.user_version(chats) if chats.exists() else None,
        "whatsmeow.db": sqlite.whatsmeow_version(store) if store.exists() else None,
    }


def build(
    session_id: str,
    session: ArchivedSession,
    staging: Path,
    files: dict[str, FileEntry],
    *,
    source_live: bool,
) -> Manifest:
    return Manifest(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        session_id=session_id,
        device_jid=session.me.jid if session.me else None,
        created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        gowa_py_version=__version__,
        schemas=schemas(staging),
        source_live=source_live,
        session=session,
        files=files,
    )


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(time.time())
    return info


def write(manifest: Manifest, staging: Path, out: IO[bytes]) -> None:
    """Write the archive of ``staging`` (as :func:`snapshot` left it) to ``out``."""
    raw = encode(manifest)
    with tarfile.open(fileobj=out, mode="w|gz", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_member(MANIFEST, len(raw)), io.BytesIO(raw))
        for name, entry in manifest.files.items():
            with (staging / name).open("rb") as file:
                tar.addfile(_member(PREFIX + name, entry.size), file)


def _members(source: IO[bytes]) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    try:
        with tarfile.open(fileobj=source, mode="r|gz") as tar:
            for member in tar:
                yield member, tar.extractfile(member) if member.isfile() else None
    except _DAMAGED as exc:
        raise ArchiveInvalid(f"the archive is truncated or damaged: {exc}") from exc


def peek(source: IO[bytes]) -> Manifest:
    """The manifest of an archive (its first member), without reading the rest."""
    for member, data in _members(source):
        if member.name != MANIFEST or data is None or member.size > _CHUNK:
            break
        return decode(data.read())
    raise ArchiveInvalid(f"not a session archive: it does not start with {MANIFEST}")


def _copy_checked(data: IO[bytes], target: Path, entry: FileEntry, name: str) -> None:
    digest, size = hashlib.sha256(), 0
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as file:
        while chunk := data.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            file.write(chunk)
    if size != entry.size or digest.hexdigest() != entry.sha256:
        raise ArchiveInvalid(f"{name} does not match its checksum: the archive is damaged")


def unpack(source: IO[bytes], folder: Path) -> Manifest:
    """Check the archive in ``source`` and write the session's files into the new
    ``folder``; raise :class:`ArchiveInvalid` or :class:`ArchiveTooNew` (the caller
    removes what was written)."""
    folder.mkdir(mode=0o700)
    manifest: Manifest | None = None
    seen: set[str] = set()
    for member, data in _members(source):
        if manifest is None:
            if member.name != MANIFEST or data is None or member.size > _CHUNK:
                raise ArchiveInvalid(f"not a session archive: it does not start with {MANIFEST}")
            manifest = decode(data.read())
            for name in manifest.files:
                if not is_safe(name):
                    raise ArchiveInvalid(f"unsafe file name in the archive: {name!r}")
            continue
        name = member.name.removeprefix(PREFIX)
        if member.isdir() and member.name.startswith(PREFIX) and is_safe(name.rstrip("/")):
            continue
        if data is None or not member.name.startswith(PREFIX) or not is_safe(name):
            raise ArchiveInvalid(f"unsafe or unexpected member in the archive: {member.name!r}")
        entry = manifest.files.get(name)
        if entry is None or name in seen:
            raise ArchiveInvalid(f"{name} is in the archive but not in its manifest")
        seen.add(name)
        try:
            _copy_checked(data, folder / name, entry, name)
        except _DAMAGED as exc:
            raise ArchiveInvalid(f"the archive is truncated or damaged: {exc}") from exc
    if manifest is None:
        raise ArchiveInvalid("the archive is empty")
    missing = set(manifest.files) - seen
    if missing:
        raise ArchiveInvalid(f"the archive is truncated: {', '.join(sorted(missing))} missing")
    _check_databases(folder)
    return manifest


def _check_databases(folder: Path) -> None:
    """The files must be sound SQLite databases of a schema this release knows."""
    for name in DATABASES:
        path = folder / name
        if not path.exists():
            continue
        problem = sqlite.check_integrity(path)
        if problem is not None:
            raise ArchiveInvalid(f"{name} in the archive is damaged: {problem}")
    chats = folder / "chats.db"
    latest = len(chats_schema.MIGRATIONS)
    if chats.exists() and (version := sqlite.user_version(chats)) > latest:
        raise ArchiveTooNew(
            f"chats.db in the archive has schema version {version}, newer than this "
            f"release's {latest}; import it with that release or a newer one"
        )
