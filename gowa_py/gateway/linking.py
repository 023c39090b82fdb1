"""Linking a session to a phone: the QR code to scan, or a pairing code to type in; for
GoWA's app and device routes and the dashboard's sandbox scan."""

from __future__ import annotations

import time

import segno
from aiohttp import web

from gowa_py import protocol as p
from gowa_py.gateway.errors import ApiError
from gowa_py.supervisor import Supervisor

QR_WAIT_S = 20.0


async def wait_for_qr(supervisor: Supervisor, session_id: str) -> p.QRCode:
    """The QR code once one is showing, starting the session if needed (the supervisor
    raises ``AlreadyLoggedIn`` or ``NoQrCode``, answered as 409 and 503)."""
    return await supervisor.login_qr(session_id, QR_WAIT_S)


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


def qr_duration(qr: p.QRCode) -> int:
    if qr.expires_at is None:
        return 0
    return max(0, round(qr.expires_at - time.time()))


def qr_link(request: web.Request, session_id: str) -> str:
    return str(request.url.with_path(f"/api/sessions/{session_id}/qr.png").with_query(None))


def qr_png(code: str, scale: int = 8) -> bytes:
    import io

    buffer = io.BytesIO()
    segno.make_qr(code, error="l").save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()
