"""Getting a session to show a QR code or a pairing code, shared by GoWA's app and device routes."""

from __future__ import annotations

import asyncio
import time

import segno
from aiohttp import web

from gowa_py import protocol as p
from gowa_py.gateway.errors import ApiError
from gowa_py.ipc import WorkerUnavailable
from gowa_py.supervisor import Supervisor

QR_WAIT_S = 20.0
POLL_S = 0.1


async def _status(supervisor: Supervisor, session_id: str) -> p.Status | None:
    """The worker's status, or None while its worker is being replaced (keep polling)."""
    try:
        result = await supervisor.command(session_id, p.GetStatus(), 2.0)
    except WorkerUnavailable:
        if not supervisor.is_running(session_id):
            raise
        return None
    assert isinstance(result, p.Status)
    return result


async def ensure_login_ready(supervisor: Supervisor, session_id: str) -> None:
    """Start the worker if needed; a LOGGED_OUT or FAILED session starts afresh."""
    record = supervisor.require(session_id)
    running = supervisor.is_running(session_id)
    if record.status in (p.SessionState.LOGGED_OUT, p.SessionState.FAILED) or not running:
        if running:
            await supervisor.restart_session(session_id)
        else:
            await supervisor.start_session(session_id)


async def wait_for_qr(supervisor: Supervisor, session_id: str) -> p.Status:
    """The status once a QR is showing (or the session turned out to be logged in)."""
    await ensure_login_ready(supervisor, session_id)
    deadline = time.monotonic() + QR_WAIT_S
    while True:
        status = await _status(supervisor, session_id)
        if status is None:
            if time.monotonic() > deadline:
                raise WorkerUnavailable(f"worker of session {session_id!r} is not answering")
            await asyncio.sleep(POLL_S)
            continue
        if status.state == p.SessionState.CONNECTED and status.me is not None:
            raise ApiError(
                p.ErrorCode.ALREADY_LOGGED_IN,
                f"session {session_id!r} is already logged in as {status.me.jid}",
            )
        if status.qr:
            return status
        if time.monotonic() > deadline:
            raise ApiError(
                p.ErrorCode.SESSION_UNAVAILABLE,
                f"session {session_id!r} has no QR code after {QR_WAIT_S:g} s "
                f"(status {status.state.value}{': ' + status.error if status.error else ''})",
            )
        await asyncio.sleep(POLL_S)


async def pair_code(supervisor: Supervisor, session_id: str, phone: str) -> str:
    digits = phone.strip().lstrip("+")
    if not digits.isdigit() or not 7 <= len(digits) <= 15:
        raise ApiError(
            p.ErrorCode.VALIDATION_ERROR, "phone must be the international number, 7 to 15 digits"
        )
    await wait_for_qr(supervisor, session_id)
    result = await supervisor.command(session_id, p.PairPhone(phone=digits), 30.0)
    assert isinstance(result, p.PairCode)
    return result.code


def qr_duration(status: p.Status) -> int:
    if status.qr_expires_at is None:
        return 0
    return max(0, round(status.qr_expires_at - time.time()))


def qr_link(request: web.Request, session_id: str) -> str:
    return str(request.url.with_path(f"/api/sessions/{session_id}/qr.png").with_query(None))


def qr_png(code: str, scale: int = 8) -> bytes:
    import io

    buffer = io.BytesIO()
    segno.make_qr(code, error="l").save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()
