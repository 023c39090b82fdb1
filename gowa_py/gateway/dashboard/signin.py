"""The dashboard's own login: an admin key or Basic credentials buy an HttpOnly session cookie."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from gowa_py import protocol as p
from gowa_py.gateway.bodies import read_json
from gowa_py.gateway.errors import ApiError, envelope
from gowa_py.gateway.keys import AUTH, SETTINGS
from gowa_py.gateway.principal import PRINCIPAL
from gowa_py.gateway.websessions import COOKIE_NAME
from gowa_py.registry import iso

routes = web.RouteTableDef()


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    api_key: str | None = None
    username: str | None = None
    password: str | None = None


def _auth_state(request: web.Request) -> dict[str, Any]:
    auth = request.app[AUTH]
    session = auth.web_session(request) if auth.enabled else None
    settings = request.app[SETTINGS]
    return {
        "auth_required": auth.enabled,
        "authenticated": not auth.enabled or session is not None or PRINCIPAL in request,
        "methods": [
            name
            for name, on in (
                ("api_key", bool(settings.api_key or settings.api_key_hash)),
                ("basic", bool(settings.basic_auth)),
            )
            if on
        ],
        # Readable by same-origin scripts only; lets a reloaded page recover its token.
        "csrf_token": session.csrf if session is not None else None,
        "expires_at": iso(session.expires_at) if session is not None else None,
    }


@routes.get("/api/dashboard/auth")
async def auth_state(request: web.Request) -> web.Response:
    """Public: whether the page must show its login form."""
    return envelope(_auth_state(request))


@routes.post("/api/dashboard/login")
async def login_route(request: web.Request) -> web.Response:
    auth = request.app[AUTH]
    if not auth.enabled:
        return envelope(_auth_state(request), message="No credentials are configured")
    refusal = auth.blocked(request)
    if refusal is not None:
        raise refusal
    sessions = auth.web_sessions
    body = await read_json(request, LoginBody)
    if body.api_key and auth.scoped_key(body.api_key) is not None:
        raise ApiError(
            p.ErrorCode.FORBIDDEN,
            "a scoped API key cannot log in to the dashboard; use the admin key",
        )
    if body.api_key:
        user, ok = "api-key", await auth.check_api_key(body.api_key)
    elif body.username and body.password is not None:
        user, ok = body.username, auth.check_credentials(body.username, body.password)
    else:
        raise ApiError(p.ErrorCode.VALIDATION_ERROR, "send api_key, or username and password")
    if not ok:
        auth.failed(request)
        raise ApiError(p.ErrorCode.UNAUTHORIZED, "wrong credentials")
    token, session = sessions.create(user)
    response = envelope(
        {
            "auth_required": True,
            "authenticated": True,
            "csrf_token": session.csrf,
            "expires_at": iso(session.expires_at),
        },
        message="Logged in",
    )
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=int(sessions.ttl),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure or request.headers.get("X-Forwarded-Proto") == "https",
    )
    return response


@routes.post("/api/dashboard/logout")
async def logout_route(request: web.Request) -> web.Response:
    request.app[AUTH].web_sessions.drop(request.cookies.get(COOKIE_NAME))
    response = envelope(None, message="Logged out")
    response.del_cookie(COOKIE_NAME, path="/")
    return response
