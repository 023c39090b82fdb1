"""Who a request proved to be: set by the authenticator, read by the rate limiter, the
event stream and the scoped-key checks, none of which need the authenticator itself."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gowa_py.gateway.throttle import client_address


@dataclass(frozen=True)
class Principal:
    """``name`` keys its rate-limit buckets. ``sessions`` None is the admin (every
    session); a scoped key has the sessions it is bound to."""

    name: str
    sessions: frozenset[str] | None = None
    read_only: bool = False


ADMIN_KEY = Principal("key:admin")
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)


def principal(request: web.Request) -> Principal:
    """The request's principal; without auth, its client address."""
    found = request.get(PRINCIPAL)
    return found if found is not None else Principal("ip:" + client_address(request.remote))
