"""Every GoWA route in one table, each served twice, and the session a request acts on.

``/api/{session_id}/<path>`` names the session in the URL; ``/<path>`` takes it from
``X-Device-Id``, then ``?device_id=``, then ``default`` (created on first use, so
single-account GoWA clients work unchanged). ``/openapi.json`` reads the same
declarations (:data:`OPERATION_ROUTES`).
"""

from __future__ import annotations

from aiohttp import web

from gowa_py.gateway.gowa import app, chat, group, message, newsletter, send, user
from gowa_py.gateway.gowa.operation import OpRoute, SessionHandler, handler
from gowa_py.gateway.keys import SUPERVISOR
from gowa_py.ids import check_session_id
from gowa_py.models import SessionConfig

DEFAULT_SESSION = "default"

OPERATION_ROUTES: list[OpRoute] = [
    *app.ROUTES,
    *user.ROUTES,
    *send.ROUTES,
    *message.ROUTES,
    *chat.ROUTES,
    *group.ROUTES,
    *newsletter.ROUTES,
]

#: The paths served unprefixed, on the session the request's header or query names.
UNPREFIXED_PATHS = frozenset(
    [path for _method, path, _handler in app.PER_SESSION]
    + [route.path for route in OPERATION_ROUTES]
)


def implied_session(request: web.Request) -> str:
    """The session an unprefixed GoWA route acts on: ``X-Device-Id``, ``?device_id=``,
    else ``default``."""
    return request.headers.get("X-Device-Id") or request.query.get("device_id") or DEFAULT_SESSION


async def resolve_session(request: web.Request) -> str:
    """The session a GoWA route acts on; auto-creates ``default`` for unprefixed calls."""
    supervisor = request.app[SUPERVISOR]
    if "session_id" in request.match_info:
        session_id = check_session_id(request.match_info["session_id"])
        supervisor.require(session_id)
        return session_id
    session_id = check_session_id(implied_session(request))
    if session_id == DEFAULT_SESSION and supervisor.get(session_id) is None:
        await supervisor.create(DEFAULT_SESSION, SessionConfig(), start=True)
    supervisor.require(session_id)
    return session_id


def serve_twice(method: str, path: str, session_handler: SessionHandler) -> list[web.RouteDef]:
    """The route unprefixed and under ``/api/{session_id}``, on the resolved session."""

    async def bound(request: web.Request) -> web.StreamResponse:
        return await session_handler(request, await resolve_session(request))

    bound.__name__ = session_handler.__name__
    bound.__doc__ = session_handler.__doc__
    return [web.route(method, path, bound), web.route(method, "/api/{session_id}" + path, bound)]


def route_table() -> list[web.RouteDef]:
    table: list[web.RouteDef] = list(app.PLAIN)
    for method, path, session_handler in app.PER_SESSION:
        table += serve_twice(method, path, session_handler)
    for route in OPERATION_ROUTES:
        table += serve_twice(route.method, route.path, handler(route))
    return table
