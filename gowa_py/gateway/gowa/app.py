"""GoWA's ``/app/*`` routes: login by QR or pairing code, logout, reconnect, status,
devices, info and passkey; and the QR image that ``qr_link`` points at."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gowa_py import __version__
from gowa_py import operations as ops
from gowa_py import protocol as p
from gowa_py.gateway import linking
from gowa_py.gateway.errors import ApiError, envelope
from gowa_py.gateway.gowa.operation import OpRoute, SessionHandler
from gowa_py.gateway.keys import SETTINGS, SUPERVISOR
from gowa_py.gateway.views import connection_flags
from gowa_py.ids import check_session_id

APP = "app"


async def app_login(request: web.Request, session_id: str) -> web.Response:
    """Start QR login and return the current QR (GoWA shape plus the raw ``qr_code``)."""
    qr = await linking.wait_for_qr(request.app[SUPERVISOR], session_id)
    return envelope(
        {
            "qr_link": linking.qr_link(request, session_id),
            "qr_duration": linking.qr_duration(qr),
            "qr_code": qr.code,
            "device_id": session_id,
        },
        "Login success",
    )


async def app_login_with_code(request: web.Request, session_id: str) -> web.Response:
    phone = request.query.get("phone", "")
    code = await linking.pair_code(request.app[SUPERVISOR], session_id, phone)
    return envelope({"pair_code": code, "device_id": session_id}, "Login with code success")


async def app_logout(request: web.Request, session_id: str) -> web.Response:
    await request.app[SUPERVISOR].logout(session_id)
    return envelope({"device_id": session_id}, message="Success logout")


async def app_reconnect(request: web.Request, session_id: str) -> web.Response:
    started = await request.app[SUPERVISOR].reconnect(session_id)
    message = "Session was stopped; starting it" if started else "Reconnect success"
    return envelope({"device_id": session_id}, message=message)


async def app_status(request: web.Request, session_id: str) -> web.Response:
    record = request.app[SUPERVISOR].require(session_id)
    return envelope(
        {
            **connection_flags(record),
            "device_id": session_id,
            "jid": record.me.jid if record.me else "",
            "status": record.status.value,
        },
        message="Connection status retrieved",
    )


async def app_devices(request: web.Request) -> web.Response:
    supervisor = request.app[SUPERVISOR]
    devices = [
        {
            "name": (record.me.push_name or record.me.jid.split("@")[0]) if record.me else "",
            "device": record.id,
            "jid": record.me.jid if record.me else "",
        }
        for record in supervisor.list()
    ]
    return envelope(devices, message="Fetch device success")


async def qr_image(request: web.Request) -> web.Response:
    """The current QR of a session as PNG (what GoWA's ``qr_link`` points at)."""
    session_id = check_session_id(request.match_info["session_id"])
    supervisor = request.app[SUPERVISOR]
    supervisor.require(session_id)
    result = await supervisor.command(session_id, p.GetQR(), 5.0)
    if not isinstance(result, p.QRCode) or not result.code:
        raise ApiError(
            p.ErrorCode.QR_NOT_AVAILABLE, f"session {session_id!r} is not showing a QR", status=404
        )
    return web.Response(
        body=linking.qr_png(result.code),
        content_type="image/png",
        headers={"Cache-Control": "no-store"},
    )


async def passkey_status(request: web.Request, session_id: str, op: Any) -> web.Response:
    """No passkey login is ever pending: neonize cannot answer one, so WhatsApp asking for
    a passkey stops the session with ``PASSKEY_REQUIRED`` instead."""
    return envelope(
        {
            "device_id": session_id,
            "status": "none",
            "challenge": None,
            "code": "",
            "skip_handoff_ux": False,
        },
        "Passkey pairing status",
    )


async def passkey_not_pending(request: web.Request, session_id: str, op: Any) -> web.Response:
    raise ApiError(
        p.ErrorCode.PASSKEY_NOT_PENDING,
        f"session {session_id!r} has no pending passkey request; log in with /app/login "
        "(QR code) or /app/login-with-code",
    )


async def app_info(request: web.Request) -> web.Response:
    """GoWA's ``/app/info``: server version and upload limits (no session involved)."""
    settings = request.app[SETTINGS]
    return envelope(
        {
            "version": __version__,
            "os": "linux",
            "base_path": "",
            "max_file_size": settings.media_limit("file"),
            "max_video_size": settings.media_limit("video"),
            "max_image_size": settings.media_limit("image"),
            "chatwoot_enabled": False,
        },
        "Fetch app info success",
    )


# Served without a session, or with the session named in the path.
PLAIN = [
    web.get("/app/devices", app_devices),
    web.get("/api/{session_id}/app/devices", app_devices),
    web.get("/api/sessions/{session_id}/qr.png", qr_image),
    web.get("/app/info", app_info),
    web.get("/api/{session_id}/app/info", app_info),
]

# Served prefixed and unprefixed, on the session the request names (see ``routing``).
PER_SESSION: list[tuple[str, str, SessionHandler]] = [
    ("GET", "/app/login", app_login),
    ("GET", "/app/login-with-code", app_login_with_code),
    ("GET", "/app/logout", app_logout),
    ("GET", "/app/reconnect", app_reconnect),
    ("GET", "/app/status", app_status),
]

ROUTES = [
    OpRoute("GET", "/app/passkey", ops.PasskeyStatus, APP, "Passkey status", local=passkey_status),
    OpRoute(
        "POST",
        "/app/passkey/response",
        ops.PasskeyResponse,
        APP,
        "Answer a passkey challenge",
        body="json",
        local=passkey_not_pending,
    ),
    OpRoute(
        "POST",
        "/app/passkey/confirm",
        ops.PasskeyConfirm,
        APP,
        "Confirm passkey pairing",
        body="json",
        local=passkey_not_pending,
    ),
]
