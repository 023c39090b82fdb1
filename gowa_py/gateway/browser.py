"""Browser safety: a web page open in the user's browser must not drive or read the gateway.

Three checks, in every auth mode (the no-credentials mode binds 127.0.0.1, which every page
in a local browser can reach):

- *Host*: the ``Host`` header must name this gateway (a loopback name, the bound address,
  or one of ``allowed_hosts``), else ``421 HOST_NOT_ALLOWED``. DNS rebinding points an
  attacker's name at 127.0.0.1; the browser then sends that name as ``Host``.
- *Cross-site*: a request whose ``Origin`` is not this gateway's own, or that the browser
  marks ``Sec-Fetch-Site: cross-site``/``same-site``, gets ``403 CROSS_SITE_REQUEST``. Any
  method: GoWA's ``GET /app/logout`` changes state too, and the WebSocket handshake is a GET.
  Following a link to the dashboard page is the one cross-site request let through.
- Bodies a plain HTML form can send are never read as JSON (:mod:`gowa_py.gateway.bodies`).

Clients that are not browsers (curl, SDKs) send no ``Origin`` nor ``Sec-Fetch-Site`` and are
not affected.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gowa_py.config import Settings
from gowa_py.gateway.errors import error_response
from gowa_py.hosts import parse_allowed_hosts, split_host
from gowa_py.protocol import ErrorCode

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
# Addresses that are not a name a client can use.
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
CROSS_SITE = frozenset({"cross-site", "same-site"})
# Pages a user may open from a link on another site (a top-level navigation).
NAVIGABLE_PATHS = frozenset({"/dashboard", "/dashboard/"})
DEFAULT_PORTS = {"http": 80, "https": 443}


class Origins:
    """The names this gateway answers to and the origins its own pages have."""

    def __init__(self, settings: Settings) -> None:
        self.port = settings.port
        self.local_names = set(LOOPBACK_NAMES)
        bound = (settings.bind_host or "").strip("[]").lower()
        if bound not in WILDCARD_HOSTS:
            self.local_names.add(bound)
        self.configured = parse_allowed_hosts(settings.allowed_hosts)

    def _configured(self, name: str, port: int | None) -> bool:
        return any(name == n and (p is None or p == port) for n, p in self.configured)

    def host_allowed(self, value: str) -> bool:
        parsed = split_host(value)
        if parsed is None:
            return False
        name, port = parsed
        return name in self.local_names or self._configured(name, port)

    def own_origin(self, request: web.Request, origin: str) -> bool:
        """Whether ``origin`` is one of this gateway's pages. Decided from the configuration
        and the port the connection arrived on, never from what the client sent as Host."""
        try:
            parts = urlsplit(origin)
            port = parts.port or DEFAULT_PORTS.get(parts.scheme)
        except ValueError:
            return False
        name = (parts.hostname or "").rstrip(".")
        if parts.scheme not in DEFAULT_PORTS or not name or parts.path not in ("", "/"):
            return False
        if self._configured(name, port):
            return True
        return name in self.local_names and port == self._local_port(request)

    def _local_port(self, request: web.Request) -> int:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        if isinstance(sockname, tuple) and len(sockname) >= 2:
            return int(sockname[1])
        return self.port

    def refusal(self, request: web.Request) -> web.Response | None:
        """The error answer for a request a browser made on another site's behalf, or None."""
        host = request.headers.get("Host")
        # Without a Host header (HTTP/1.0) the client is not a browser.
        if host is not None and not self.host_allowed(host):
            return error_response(
                ErrorCode.HOST_NOT_ALLOWED,
                f"Host {host[:200]!r} is not a name of this gateway; add it to allowed_hosts "
                "if clients reach the gateway by that name",
            )
        origin = request.headers.get("Origin")
        if origin is not None and not self.own_origin(request, origin):
            return error_response(
                ErrorCode.CROSS_SITE_REQUEST, "requests from other web sites are refused"
            )
        site = request.headers.get("Sec-Fetch-Site", "").lower()
        if site in CROSS_SITE and not self._navigation(request):
            return error_response(
                ErrorCode.CROSS_SITE_REQUEST, "requests from other web sites are refused"
            )
        return None

    @staticmethod
    def _navigation(request: web.Request) -> bool:
        return (
            request.method in ("GET", "HEAD")
            and request.path in NAVIGABLE_PATHS
            and request.headers.get("Sec-Fetch-Mode", "").lower() == "navigate"
        )

    def middleware(self) -> Any:
        @web.middleware
        async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
            refusal = self.refusal(request)
            return refusal if refusal is not None else await handler(request)

        return guard
