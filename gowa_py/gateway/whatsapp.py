"""GoWA's per-account routes (app/*, message read), served twice.

The other GoWA operations are declared in ``gowa_*.py`` and served by ``gowa_api``.

``/api/{session_id}/<path>`` names the session in the URL; ``/<path>`` takes it from
``X-Device-Id``, then ``?device_id=``, then ``default`` (created on first use, so
single-account GoWA clients work unchanged).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gowa_py import protocol as p
from gowa_py.gateway import login
from gowa_py.gateway.errors import ApiError, envelope
from gowa_py.gateway.keys import SUPERVISOR
from gowa_py.gateway.views import connection_flags
from gowa_py.ids import check_session_id
from gowa_py.models import SessionConfig

DEFAULT_SESSION = "default"

Handler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


async def resolve_session(request: web.Request) -> str:
    """The session a GoWA route acts on; auto-creates ``default`` for unprefixed calls."""
    supervisor = request.app[SUPERVISOR]
    if "session_id" in request.match_info:
        session_id = check_session_id(request.match_info["session_id"])
        supervisor.require(session_id)
        return session_id
    raw = request.headers.get("X-Device-Id") or request.query.get("device_id")
    session_id = check_session_id(raw or DEFAULT_SESSION)
    if session_id == DEFAULT_SESSION and supervisor.get(session_id) is None:
        await supervisor.create(DEFAULT_SESSION, SessionConfig(), start=True)
    supervisor.require(session_id)
    return session_id


def _both(routes: list[web.RouteDef], method: str, path: str, handler: Handler) -> None:
    async def bound(request: web.Request) -> web.StreamResponse:
        return await handler(request, await resolve_session(request))

    bound.__name__ = handler.__name__
    bound.__doc__ = handler.__doc__
    routes.append(web.route(method, path, bound))
    routes.append(web.route(method, "/api/{session_id}" + path, bound))


async def app_login(request: web.Request, session_id: str) -> web.Response:
    """Start QR login and return the current QR (GoWA shape plus the raw ``qr_code``)."""
    qr = await login.wait_for_qr(request.app[SUPERVISOR], session_id)
    return envelope(
        {
            "qr_link": login.qr_link(request, session_id),
            "qr_duration": login.qr_duration(qr),
            "qr_code": qr.code,
            "device_id": session_id,
        }
    )


async def app_login_with_code(request: web.Request, session_id: str) -> web.Response:
    phone = request.query.get("phone", "")
    code = await login.pair_code(request.app[SUPERVISOR], session_id, phone)
    return envelope({"pair_code": code, "device_id": session_id})


async def app_logout(request: web.Request, session_id: str) -> web.Response:
    await request.app[SUPERVISOR].logout(session_id)
    return envelope(None, message="Success logout")


async def app_reconnect(request: web.Request, session_id: str) -> web.Response:
    if await request.app[SUPERVISOR].reconnect(session_id):
        return envelope(None, message="Session was stopped; starting it")
    return envelope(None, message="Reconnect success")


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
            "name": record.me.push_name if record.me else "",
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
        body=login.qr_png(result.code),
        content_type="image/png",
        headers={"Cache-Control": "no-store"},
    )


def route_table() -> list[web.RouteDef]:
    routes: list[web.RouteDef] = [
        web.get("/app/devices", app_devices),
        web.get("/api/{session_id}/app/devices", app_devices),
        web.get("/api/sessions/{session_id}/qr.png", qr_image),
    ]
    _both(routes, "GET", "/app/login", app_login)
    _both(routes, "GET", "/app/login-with-code", app_login_with_code)
    _both(routes, "GET", "/app/logout", app_logout)
    _both(routes, "GET", "/app/reconnect", app_reconnect)
    _both(routes, "GET", "/app/status", app_status)
    return routes
