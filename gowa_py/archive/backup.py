"""``gowa backup DIR`` and ``gowa restore DIR``: the registry and every session of a data
dir, copied while the gateway runs, and put back into a data dir no gateway uses.

Each database is copied with SQLite's online backup API inside one read transaction
(``sqlite.copy_database``): its writers, the gateway and the workers, are never held up.
The registry is copied first, then the sessions: a restored registry's event cursor is
then at or behind each session's event log, and the gateway delivers again what came
after it (at least once) instead of skipping it. A backup is complete once its
``backup.json`` is written, last; restore refuses a folder without it and checks every
file's checksum before anything is put in place.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from gowa_py import __version__
from gowa_py.archive import pack, sqlite
from gowa_py.archive.manifest import ArchiveInvalid, ArchiveTooNew, FileEntry, Header, too_new
from gowa_py.archive.session import EXPORTED, relocate_media
from gowa_py.errors import GowaError
from gowa_py.ids import is_valid_session_id
from gowa_py.serve import lock_data_dir
from gowa_py.storage import registry_schema, sqlitefile

FORMAT = "gowa-backup"
FORMAT_VERSION = 1
MANIFEST = "backup.json"
REGISTRY = "gowa.db"


class BackupManifest(msgspec.Struct, frozen=True):
    format: str
    format_version: int
    created_at: str
    gowa_py_version: str
    #: Seconds the copy took (the registry and every session).
    seconds: float
    sessions: list[str]
    files: dict[str, FileEntry]


def _empty(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


def _sessions(registry_copy: Path) -> list[str]:
    conn = sqlitefile.read_only(registry_copy)
    try:
        return [row[0] for row in conn.execute("SELECT id FROM sessions ORDER BY id")]
    finally:
        conn.close()


def backup(data_dir: Path, target: Path, pages: int = sqlite.STEP_PAGES) -> BackupManifest:
    """Copy ``data_dir`` (its gateway may be running) into the new or empty ``target``."""
    if not (data_dir / REGISTRY).is_file():
        raise GowaError(
            f"{data_dir} is not a gowa-py data dir (no {REGISTRY}; a gateway with "
            "database_url keeps its state in PostgreSQL: back that up with pg_dump)"
        )
    if not _empty(target):
        raise GowaError(f"{target} is not empty: back up into a new folder")
    started = time.monotonic()
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    sqlite.copy_database(data_dir / REGISTRY, target / REGISTRY, pages)
    registry = target / REGISTRY
    files = {REGISTRY: FileEntry(pack.sha256(registry), registry.stat().st_size)}
    sessions = [s for s in _sessions(target / REGISTRY) if is_valid_session_id(s)]
    for session_id in sessions:
        folder = data_dir / "sessions" / session_id
        if not folder.is_dir():
            continue
        copied = pack.snapshot(folder, target / "sessions" / session_id, (EXPORTED,), pages)
        files.update({f"sessions/{session_id}/{name}": entry for name, entry in copied.items()})
    manifest = BackupManifest(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        gowa_py_version=__version__,
        seconds=round(time.monotonic() - started, 3),
        sessions=sessions,
        files=files,
    )
    part = target / (MANIFEST + ".part")
    part.write_bytes(msgspec.json.format(msgspec.json.encode(manifest), indent=2))
    os.replace(part, target / MANIFEST)
    return manifest


def read_manifest(source: Path) -> BackupManifest:
    try:
        raw = (source / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise ArchiveInvalid(
            f"{source} is not a complete backup (no {MANIFEST}: not one, or cut short)"
        ) from None
    try:
        header = msgspec.json.decode(raw, type=Header)
        if header.format != FORMAT:
            raise ArchiveInvalid(f"{source} is not a gowa-py backup (format {header.format!r})")
        if header.format_version > FORMAT_VERSION:
            raise too_new("backup", header.format_version, FORMAT_VERSION, "restore")
        return msgspec.json.decode(raw, type=BackupManifest)
    except msgspec.DecodeError as exc:
        raise ArchiveInvalid(f"{source / MANIFEST} is invalid: {exc}") from exc


def _check(source: Path, manifest: BackupManifest) -> None:
    """Every file as backed up, and of a schema this release can open."""
    for name, entry in manifest.files.items():
        parts = name.split("/")
        safe = name == REGISTRY or (
            len(parts) >= 3
            and parts[0] == "sessions"
            and is_valid_session_id(parts[1])
            and (pack.is_safe("/".join(parts[2:])) or parts[2:] == [EXPORTED])
        )
        if not safe:
            raise ArchiveInvalid(f"unsafe file name in the backup: {name!r}")
        path = source / name
        if path.is_symlink() or not path.is_file():
            raise ArchiveInvalid(f"{name} is missing from the backup")
        if path.stat().st_size != entry.size or pack.sha256(path) != entry.sha256:
            raise ArchiveInvalid(f"{name} does not match its checksum: the backup is damaged")
    latest = len(registry_schema.MIGRATIONS)
    if (version := sqlite.user_version(source / REGISTRY)) > latest:
        raise ArchiveTooNew(
            f"the backup's registry has schema version {version}, newer than this release's "
            f"{latest}; restore it with that release or a newer one"
        )


def restore(source: Path, data_dir: Path, force: bool = False) -> BackupManifest:
    """Put the backup in ``source`` into ``data_dir``, which must be empty unless
    ``force``: then its registry and sessions are moved aside into ``replaced-<time>``.
    No gateway may use the data dir meanwhile (its lock is held)."""
    manifest = read_manifest(source)
    _check(source, manifest)
    present = data_dir.iterdir() if data_dir.exists() else iter(())
    existing = [path for path in present if path.name != "gowa.lock"]
    if existing and not force:
        raise GowaError(f"{data_dir} is not empty: restore into a new data dir, or use --force")
    fd = lock_data_dir(data_dir)
    try:
        staging = data_dir / f"restoring-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        try:
            for name in manifest.files:
                (staging / name).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                shutil.copyfile(source / name, staging / name)
                os.chmod(staging / name, 0o600)
            for session_id in filter(is_valid_session_id, manifest.sessions):
                media = data_dir / "sessions" / session_id / "media"
                relocate_media(staging / "sessions" / session_id, media)
            if existing:
                aside = data_dir / f"replaced-{int(time.time())}"
                aside.mkdir(mode=0o700)
                for path in existing:
                    os.rename(path, aside / path.name)
            (staging / "sessions").mkdir(mode=0o700, exist_ok=True)
            os.rename(staging / "sessions", data_dir / "sessions")
            os.rename(staging / REGISTRY, data_dir / REGISTRY)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        os.close(fd)
    return manifest
