"""Rate limit of the routes that make WhatsApp do something (sending, message actions,
chats, groups, ...): one token bucket per principal (the credential the request proved:
API key, basic-auth user, the credential a dashboard login used or, without auth, the
client address) and session. Over the limit: 429
``TOO_MANY_REQUESTS`` with ``Retry-After``, so a runaway client cannot get a number banned
for spamming; per session, because WhatsApp's own limits are per number and one CRM key
commonly drives many numbers.

A token bucket (rather than a fixed window) lets a client send a burst at once and then
a steady ``rate`` per second, which is what normal use looks like.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gowa_py.config import Settings
from gowa_py.gateway.errors import error_response
from gowa_py.gateway.principal import principal
from gowa_py.protocol import ErrorCode

# First segment of a GoWA path (after an optional /api/{session_id}) that is limited.
LIMITED = frozenset({"send", "message", "chat", "group", "newsletter", "user", "call"})
SESSION_PREFIX = "/api/{session_id}/"
MAX_CLIENTS = 10_000


class RateLimiter:
    """Token buckets by client key; :meth:`take` answers how long to wait (0 = go)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> float:
        now = self._clock()
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._store(key, tokens - 1.0, now)
            return 0.0
        self._store(key, tokens, now)
        return (1.0 - tokens) / self.rate

    def _store(self, key: str, tokens: float, now: float) -> None:
        if key not in self._buckets and len(self._buckets) >= self._max_clients:
            self._forget_full(now)
        self._buckets[key] = (tokens, now)

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled (they hold no state worth keeping); if every
        client is mid-burst, drop the oldest half so memory stays bounded."""
        full = [
            k
            for k, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate >= self.burst
        ]
        if len(full) < self._max_clients // 2:
            by_age = sorted(self._buckets, key=lambda k: self._buckets[k][1])
            full += by_age[: self._max_clients // 2]
        for key in full:
            self._buckets.pop(key, None)


def limited_route(pattern: str) -> bool:
    """Whether a route (its pattern, e.g. ``/api/{session_id}/send/message``) is a
    WhatsApp action route, with or without the session prefix."""
    if pattern.startswith(SESSION_PREFIX):
        pattern = pattern[len(SESSION_PREFIX) - 1 :]
    return pattern.strip("/").split("/")[0] in LIMITED


def limited_session(request: web.Request) -> str | None:
    """The session a WhatsApp action route acts on, or None for a route not limited. The
    matched route decides, not the path's text: a session may be called ``sessions`` or
    ``dashboard``. The session is then ``/api/{session_id}/...``, else ``X-Device-Id`` /
    ``?device_id=``, else ``default``, as the routes themselves resolve it."""
    resource = request.match_info.route.resource
    if resource is None or not limited_route(resource.canonical):
        return None
    named = request.match_info.get("session_id") or (
        request.headers.get("X-Device-Id") or request.query.get("device_id")
    )
    return (named or "default")[:64]


def middleware(settings: Settings) -> Any:
    """Runs after authentication, so only authenticated clients spend tokens."""
    limiter = RateLimiter(settings.rate_limit, settings.rate_limit_burst)

    @web.middleware
    async def rate_limit(request: web.Request, handler: Any) -> web.StreamResponse:
        session = limited_session(request)
        if limiter.rate > 0 and request.method != "OPTIONS" and session is not None:
            wait = limiter.take(f"{principal(request).name}|{session}")
            if wait > 0:
                response = error_response(
                    ErrorCode.TOO_MANY_REQUESTS,
                    f"rate limit of {settings.rate_limit:g} requests/s per session "
                    f"(burst {settings.rate_limit_burst}) exceeded for {session!r}; "
                    f"retry in {wait:.2f} s",
                )
                response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
                return response
        return await handler(request)

    return rate_limit
