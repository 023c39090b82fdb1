"""Exporting a session to an archive and installing one into a data dir.

Both the gateway (``/api/sessions/{id}/export|import``, with the worker stopped by the
supervisor) and ``gowa session export|import --data-dir`` (a gateway that is not running)
go through here. A session's registry row is written through ``RegistryStorage`` only,
so another registry backend imports the same way.

A login is *moved*, never copied: the Signal ratchets in ``whatsmeow.db`` advance with
every message, and two clients of one device get one of them logged out. So an export
leaves the source stopped and marked (``exported.json`` in its folder; the supervisor
refuses to start it), unless asked to keep it running, and then the archive says so
(``source_live``) and an import refuses it unless forced.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from gowa_py.archive import pack
from gowa_py.archive.manifest import ArchivedSession, DeviceLive, Manifest
from gowa_py.errors import GowaError
from gowa_py.ids import check_session_id
from gowa_py.protocol import ErrorCode
from gowa_py.registry import SessionRecord
from gowa_py.storage.interfaces import RegistryStorage

#: The mark an export leaves in the source session's folder.
EXPORTED = "exported.json"
#: Where archives are written and unpacked inside the data dir (the sessions' file
#: system, so an import is one rename); emptied when a gateway starts.
STAGING = "staging"


def archived(record: SessionRecord) -> ArchivedSession:
    return ArchivedSession(
        created_at=record.created_at,
        config=record.config,
        me=record.me,
        event_epoch=record.event_epoch,
        last_event_seq=record.last_event_seq,
    )


def export(
    record: SessionRecord,
    session_dir: Path,
    out: IO[bytes],
    scratch: Path,
    *,
    source_live: bool,
    stores: Callable[[Path], None] | None = None,
) -> Manifest:
    """Write the archive of a session whose worker is stopped (or, with ``source_live``,
    of a running one: each database is still one consistent copy) to ``out``. ``stores``
    writes the session's databases into the staging folder when they are not files in
    ``session_dir`` (PostgreSQL)."""
    with tempfile.TemporaryDirectory(dir=scratch, prefix="export-") as tmp:
        staging = Path(tmp) / "session"
        pack.snapshot(session_dir, staging)
        if stores is not None:
            stores(staging)
        files = pack.entries(staging)
        manifest = pack.build(record.id, archived(record), staging, files, source_live=source_live)
        pack.write(manifest, staging, out)
    return manifest


def export_to_file(
    record: SessionRecord,
    session_dir: Path,
    path: Path,
    *,
    source_live: bool,
    stores: Callable[[Path], None] | None = None,
) -> Manifest:
    """:func:`export` into ``path`` (0600), which appears only once complete."""
    part = path.with_name(path.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            manifest = export(
                record, session_dir, out, path.parent, source_live=source_live, stores=stores
            )
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return manifest


def mark_exported(session_dir: Path, manifest: Manifest) -> str:
    """Leave the mark that keeps the source from starting; returns the session's error."""
    note = {"exported_at": manifest.created_at, "device_jid": manifest.device_jid}
    (session_dir / EXPORTED).write_text(json.dumps(note))
    return (
        f"exported at {manifest.created_at}: it must not run here too (two clients of one "
        f"device get one logged out); delete it, or remove {EXPORTED} from its folder to "
        "start it here if the archive was never imported"
    )


def exported_mark(session_dir: Path) -> dict[str, object] | None:
    """The mark of an export, if the session was exported from here."""
    try:
        data = json.loads((session_dir / EXPORTED).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def check_live(
    manifest: Manifest, records: list[SessionRecord], sessions_dir: Path, force: bool
) -> None:
    """Refuse an archive whose device may be running elsewhere: its source kept running,
    or a session of this registry is logged in as the same account (one exported from
    here does not count: it cannot start, and moving a session back is allowed)."""
    if force:
        return
    if manifest.source_live:
        raise DeviceLive(
            f"the archive of {manifest.session_id!r} was made with the session left running "
            "(--keep-running): its device may still be connected there, and two clients of "
            "one device get one logged out; stop it there (deleting it while it runs would log "
            "the device out), then import with --force"
        )
    jid = manifest.device_jid
    same = [
        r.id
        for r in records
        if jid and r.me is not None and r.me.jid == jid
        if exported_mark(sessions_dir / r.id) is None
    ]
    if same:
        raise DeviceLive(
            f"session {same[0]!r} here is logged in as {jid} already; two clients of one "
            "device get one logged out (delete it first, or import with --force)"
        )


def unpack_to(source: IO[bytes], scratch: Path, media_dir: Path) -> tuple[Path, Manifest]:
    """Check and unpack an archive into a new folder under ``scratch`` (same file system
    as the sessions, so installing it is one rename), its media paths pointed at
    ``media_dir`` (:func:`relocate_media`); nothing is left on failure."""
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=scratch, prefix="import-"))
    try:
        manifest = pack.unpack(source, staging / "session")
        relocate_media(staging / "session", media_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging, manifest


def relocate_media(folder: Path, media_dir: Path) -> int:
    """Point the unpacked ``chats.db``'s saved media at ``media_dir``, where they will be
    once the session is in place (the paths are absolute: another data dir or session id
    would leave them pointing at the old place). A path that is not one the worker would
    have written is cleared (the worker downloads the media again when asked): it came
    from the archive, not from this gateway. Returns how many were kept."""
    chats = folder / "chats.db"
    if not chats.exists():
        return 0
    conn = sqlite3.connect(chats, isolation_level=None)
    try:
        rows = conn.execute(
            "SELECT chat_jid, id, media_path FROM messages WHERE media_path LIKE '%/media/%'"
        ).fetchall()
        moved = []
        for chat, message_id, path in rows:
            relative = "media/" + path.rpartition("/media/")[2]
            new = str(media_dir.parent / relative) if pack.is_safe(relative) else ""
            moved.append((new, chat, message_id))
        conn.execute("BEGIN")
        conn.executemany("UPDATE messages SET media_path = ? WHERE chat_jid = ? AND id = ?", moved)
        conn.execute(
            "UPDATE messages SET media_path = '' WHERE media_path != '' "
            "AND media_path NOT LIKE '%/media/%'"
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return sum(1 for new, _, _ in moved if new)


def install(
    registry: RegistryStorage,
    sessions_dir: Path,
    session_id: str,
    folder: Path,
    session: ArchivedSession,
    desired: str,
) -> None:
    """Move the unpacked ``folder`` into place as ``session_id`` and add its registry row;
    all or nothing."""
    check_session_id(session_id)
    target = sessions_dir / session_id
    if registry.get(session_id) is not None or target.exists():
        raise GowaError(f"session {session_id!r} already exists", code=ErrorCode.SESSION_EXISTS)
    sessions_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.rename(folder, target)
    try:
        registry.create(session_id, session.config, desired)
        if session.me is not None:
            registry.set_me(session_id, session.me)
        if session.event_epoch is not None:
            registry.set_event_log(session_id, session.event_epoch, session.last_event_seq)
    except BaseException:
        with contextlib.suppress(Exception):
            registry.delete(session_id)
        shutil.rmtree(target, ignore_errors=True)
        raise
