"""Moving a session between gateways: ``POST /api/sessions/{id}/export`` answers the
session's archive, ``POST /api/sessions/{id}/import`` installs one as ``id``.

Both are for the admin only (an archive holds the account's keys). Export stops the
session's worker while its files are read and, unless ``keep_running=true``, leaves it
stopped and marked exported (docs/backup.md says why a device must never run twice).
An archive holds SQLite stores: a gateway on PostgreSQL writes them from the session's
schema and reads them into a new one (``GatewayStorage.export_stores|adopt_stores``).
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import tempfile
from pathlib import Path

from aiohttp import web

from gowa_py.archive import session as archive
from gowa_py.archive.manifest import Manifest
from gowa_py.gateway.errors import ApiError, envelope
from gowa_py.gateway.keys import SESSION_VIEWS, SETTINGS, STORAGE, SUPERVISOR
from gowa_py.ids import check_session_id
from gowa_py.protocol import ErrorCode

routes = web.RouteTableDef()

EXPORT_PATH = "/api/sessions/{session_id}/export"
IMPORT_PATH = "/api/sessions/{session_id}/import"
ARCHIVE_TYPE = "application/gzip"
_CHUNK = 1 << 20


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise ApiError(ErrorCode.VALIDATION_ERROR, f"{name} must be true or false")
    return value in ("true", "1")


def _scratch(request: web.Request) -> Path:
    """Where archives are staged: in the data dir, on the sessions' file system."""
    return request.app[SUPERVISOR].data_dir / archive.STAGING


@routes.post(EXPORT_PATH)
async def export_session(request: web.Request) -> web.StreamResponse:
    session_id = check_session_id(request.match_info["session_id"])
    keep_running = _flag(request, "keep_running")
    supervisor = request.app[SUPERVISOR]
    supervisor.require(session_id)
    scratch = _scratch(request)
    scratch.mkdir(mode=0o700, exist_ok=True)
    async with supervisor.transfer.quiesced(session_id, resume=keep_running) as record:
        with tempfile.TemporaryDirectory(dir=scratch, prefix="export-") as tmp:
            path = Path(tmp) / "archive.tar.gz"
            manifest = await asyncio.to_thread(
                archive.export_to_file,
                record,
                supervisor.sessions_dir / session_id,
                path,
                source_live=keep_running,
                stores=functools.partial(request.app[STORAGE].export_stores, session_id),
            )
            # Sent whole before the session is marked: a download cut short leaves the
            # source as it was (quiesced starts it again if it ran).
            response = web.StreamResponse(
                headers={
                    "Content-Type": ARCHIVE_TYPE,
                    "Content-Disposition": f'attachment; filename="{session_id}.gowa.tar.gz"',
                }
            )
            response.content_length = path.stat().st_size
            await response.prepare(request)
            with path.open("rb") as file:
                while chunk := await asyncio.to_thread(file.read, _CHUNK):
                    await response.write(chunk)
            await response.write_eof()
        if not keep_running:
            await supervisor.transfer.mark_exported(session_id, manifest)
    return response


async def _receive(request: web.Request, target: Path) -> None:
    limit = int(request.app[SETTINGS].max_import_mb * 1024 * 1024)
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(ErrorCode.PAYLOAD_TOO_LARGE, "the archive is over max_import_mb")
    size = 0
    with target.open("wb") as file:
        async for chunk in request.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise ApiError(ErrorCode.PAYLOAD_TOO_LARGE, "the archive is over max_import_mb")
            await asyncio.to_thread(file.write, chunk)


async def _adopt(
    request: web.Request, session_id: str, folder: Path, manifest: Manifest, start: bool
) -> None:
    """Hand the unpacked stores to the gateway's storage (PostgreSQL copies them into
    the session's schema), then install the session; a failure takes the stores back."""
    storage, supervisor = request.app[STORAGE], request.app[SUPERVISOR]
    await asyncio.to_thread(storage.adopt_stores, session_id, folder)
    try:
        await supervisor.transfer.adopt(session_id, folder, manifest.session, start)
    except BaseException:
        if supervisor.get(session_id) is None:
            await asyncio.to_thread(storage.discard_stores, session_id)
        raise


@routes.post(IMPORT_PATH)
async def import_session(request: web.Request) -> web.Response:
    session_id = check_session_id(request.match_info["session_id"])
    force = _flag(request, "force")
    start = _flag(request, "start") if "start" in request.query else True
    supervisor = request.app[SUPERVISOR]
    if supervisor.get(session_id) is not None:
        raise ApiError(ErrorCode.SESSION_EXISTS, f"session {session_id!r} already exists")
    scratch = _scratch(request)
    scratch.mkdir(mode=0o700, exist_ok=True)
    upload = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=scratch, prefix="upload-"))
    staging: Path | None = None
    try:
        await _receive(request, upload / "archive.tar.gz")
        with (upload / "archive.tar.gz").open("rb") as source:
            media = supervisor.sessions_dir / session_id / "media"
            unpacked, manifest = await asyncio.to_thread(archive.unpack_to, source, scratch, media)
        staging = unpacked
        archive.check_live(manifest, supervisor.list(), supervisor.sessions_dir, force)
        await _adopt(request, session_id, unpacked / "session", manifest, start)
    finally:
        await asyncio.to_thread(shutil.rmtree, upload, True)
        if staging is not None:
            await asyncio.to_thread(shutil.rmtree, staging, True)
    view = request.app[SESSION_VIEWS].one(
        supervisor.require(session_id),
        supervisor.worker_info(session_id),
        supervisor.node_of(session_id),
    )
    return envelope(view, message=f"Session imported from {manifest.session_id!r}", status=201)
