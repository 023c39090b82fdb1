"""One-hop routing in a cluster: a request for a session another node runs is sent on to
that node, once, and its answer returned unchanged.

The request travels streamed, with its method, path, query, headers (credentials
included: the owner checks them again) and body; ``X-Forwarded-For``, ``-Proto`` and
``-Host`` say where it came from, and :data:`FORWARDED_BY` marks it, so a node never
forwards a forwarded request again: a stale view of who runs a session (a takeover
between two renewal rounds) costs one local answer, never a loop. A request that makes a
session (``POST /api/sessions``, GoWA's ``POST /devices``), or that acts on one no node
runs (a stopped one, or GoWA's implicit ``default`` before it exists), goes to the node
with the most room, so whatever starts the session starts it there. The owner's status,
headers and body come back as they are (compressed or not), streamed too.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from gowa_py.cluster.leases import Route
from gowa_py.gateway.errors import ApiError
from gowa_py.gateway.gowa.routing import UNPREFIXED_PATHS, implied_session
from gowa_py.protocol import ErrorCode
from gowa_py.supervisor import Supervisor

FORWARDED_BY = "X-Gowa-Forwarded-By"
#: Headers of one connection, not of the request or answer (RFC 9110, 7.6.1), and the
#: Host, which names the node the request reached (sent on as X-Forwarded-Host).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
#: A node that does not accept the connection, or goes a minute without a byte of its
#: answer, is down or wedged; the longest wait of a route (a QR code, a worker start)
#: is shorter.
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=60.0)
#: The routes that make a new session (ours and GoWA's): placed like a start.
_CREATE = frozenset({"/api/sessions", "/devices"})


def session_of(request: web.Request) -> str | None:
    """The session a request acts on, as its route resolves it; None: no session."""
    info = request.match_info
    named = info.get("session_id") or info.get("device_id")
    if named:
        return named
    resource = info.route.resource
    if resource is not None and resource.canonical in UNPREFIXED_PATHS:
        return implied_session(request)
    return None


class Forwarder:
    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        self._client: aiohttp.ClientSession | None = None

    def _target(self, request: web.Request) -> Route | None:
        cluster = self._supervisor.cluster
        if cluster is None or FORWARDED_BY in request.headers:
            return None
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        resource = request.match_info.route.resource
        if request.method == "POST" and resource is not None and resource.canonical in _CREATE:
            return cluster.placement()  # a new session: to the node with the most room
        session_id = session_of(request)
        if session_id is None:
            return None
        if cluster.node_of(session_id) is None:
            # No node runs it (stopped, new, or GoWA's implicit ``default`` not made
            # yet): whatever starts it runs it on the node with the most room.
            return cluster.placement()
        route = cluster.route(session_id)
        if route is not None and cluster.silent(route):
            raise ApiError(
                ErrorCode.SESSION_UNAVAILABLE,
                f"the session runs on node {route.node!r}, which has not renewed its leases "
                f"for {route.heartbeat_age:.0f} s (stopped, frozen or cut off): it moves to "
                "another node once its lease expires; retry in a few seconds",
                headers={"Retry-After": "5"},
            )
        return route

    def middleware(self) -> Any:
        @web.middleware
        async def forward(request: web.Request, handler: Any) -> web.StreamResponse:
            route = self._target(request)
            if route is None:
                return await handler(request)
            return await self._forward(request, route)

        return forward

    async def _forward(self, request: web.Request, route: Route) -> web.StreamResponse:
        cluster = self._supervisor.cluster
        assert cluster is not None
        if self._client is None:
            # Bodies stay as the owner encoded them; no cookie jar: nothing is shared
            # between the requests of different clients.
            self._client = aiohttp.ClientSession(
                timeout=_TIMEOUT, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
            )
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP
        )
        forwarded_for = request.headers.get("X-Forwarded-For")
        client = request.remote or ""
        headers["X-Forwarded-For"] = f"{forwarded_for}, {client}" if forwarded_for else client
        headers["X-Forwarded-Proto"] = request.scheme
        headers["X-Forwarded-Host"] = request.host
        headers[FORWARDED_BY] = cluster.node_id
        body = request.content if request.body_exists else None
        try:
            upstream = await self._client.request(
                request.method,
                route.url + request.rel_url.raw_path_qs,
                headers=headers,
                data=body,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(
                ErrorCode.SESSION_UNAVAILABLE,
                f"the session runs on node {route.node!r} at {route.url}, which does not answer "
                f"({type(exc).__name__}); retry in a few seconds",
                headers={"Retry-After": "5"},
            ) from exc
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    response.headers.add(name, value)
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        return response

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
