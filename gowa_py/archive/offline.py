"""Export and import with the gateway stopped: straight into its data dir, holding the
data dir's lock so no gateway starts meanwhile (and refusing while one runs)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gowa_py.archive import pack
from gowa_py.archive import session as archive
from gowa_py.archive.manifest import Manifest
from gowa_py.errors import GowaError
from gowa_py.ids import check_session_id
from gowa_py.protocol import ErrorCode, SessionState
from gowa_py.serve import lock_data_dir
from gowa_py.storage.factory import sqlite_registry
from gowa_py.storage.interfaces import RegistryStorage


@contextmanager
def locked_registry(data_dir: Path, create: bool = False) -> Iterator[RegistryStorage]:
    """The registry of a data dir no gateway is using (``DataDirBusy`` otherwise)."""
    if not create and not (data_dir / "gowa.db").exists():
        raise GowaError(
            f"{data_dir} is not a gowa-py data dir (no gowa.db; a gateway with database_url "
            "keeps its sessions in PostgreSQL: see docs/backup.md)"
        )
    fd = lock_data_dir(data_dir)
    try:
        registry = sqlite_registry(data_dir / "gowa.db")
        try:
            yield registry
        finally:
            registry.close()
    finally:
        os.close(fd)


def export_session(data_dir: Path, session_id: str, path: Path, keep_running: bool) -> Manifest:
    """Write the archive of a session of a stopped gateway; unless ``keep_running``, mark
    it exported so the gateway will not start it again."""
    check_session_id(session_id)
    with locked_registry(data_dir) as registry:
        record = registry.get(session_id)
        if record is None:
            raise GowaError(f"no session {session_id!r}", code=ErrorCode.SESSION_NOT_FOUND)
        folder = data_dir / "sessions" / session_id
        manifest = archive.export_to_file(record, folder, path, source_live=keep_running)
        if not keep_running:
            registry.set_desired(session_id, "stopped")
            error = archive.mark_exported(folder, manifest)
            registry.set_status(session_id, SessionState.STOPPED, error)
        return manifest


def import_session(
    data_dir: Path, path: Path, session_id: str | None, force: bool, start: bool
) -> tuple[str, Manifest]:
    """Install an archive into the data dir of a stopped gateway; the session starts with
    the gateway when ``start``. Returns the id it got and the manifest."""
    with locked_registry(data_dir, create=True) as registry:
        scratch = data_dir / archive.STAGING
        with path.open("rb") as source:
            manifest = pack.peek(source)
        target = check_session_id(session_id or manifest.session_id)
        media = data_dir / "sessions" / target / "media"
        with path.open("rb") as source:
            staging, manifest = archive.unpack_to(source, scratch, media)
        try:
            archive.check_live(manifest, registry.all(), data_dir / "sessions", force)
            desired = "running" if start else "stopped"
            archive.install(
                registry,
                data_dir / "sessions",
                target,
                staging / "session",
                manifest.session,
                desired,
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target, manifest
