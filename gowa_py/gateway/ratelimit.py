"""Rate limit of the routes that make WhatsApp do something (sending, message actions,
chats, groups, ...): one token bucket per client (API key, basic-auth user, dashboard
login or, without auth, client IP) and session. Over the limit: 429
``TOO_MANY_REQUESTS`` with ``Retry-After``, so a runaway client cannot get a number banned
for spamming; per session, because WhatsApp's own limits are per number and one CRM key
commonly drives many numbers.

A token bucket (rather than a fixed window) lets a client send a burst at once and then
a steady ``rate`` per second, which is what normal use looks like.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gowa_py.config import Settings
from gowa_py.gateway.errors import error_response
from gowa_py.gateway.websessions import COOKIE_NAME

# First segment of a GoWA path (after an optional /api/{session_id}) that is limited.
LIMITED = frozenset({"send", "message", "chat", "group", "newsletter", "user", "call"})
# /api/<segment>/... that is not a session prefix.
NOT_SESSIONS = frozenset({"sessions", "dashboard"})
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


def limited_session(path: str, named: str | None = None) -> str | None:
    """The session a WhatsApp action route acts on, or None for a route not limited:
    ``/api/{session_id}/...``, else ``named`` (``X-Device-Id`` / ``?device_id=``), else
    ``default``, as the routes themselves resolve it."""
    parts = path.strip("/").split("/")
    session = None
    if len(parts) >= 3 and parts[0] == "api" and parts[1] not in NOT_SESSIONS:
        session, parts = parts[1], parts[2:]
    if parts[0] not in LIMITED:
        return None
    return (session or named or "default")[:64]


def is_limited(path: str) -> bool:
    """Whether ``path`` is a WhatsApp action route, with or without ``/api/{session_id}``."""
    return limited_session(path) is not None


def client_key(request: web.Request, auth_enabled: bool) -> str:
    """Who is asking. Credentials only count when auth is on (then they were checked);
    without auth anyone could invent keys, so the client IP is used. Keys are hashed so
    the limiter never holds a secret."""
    if auth_enabled:
        api_key = request.headers.get("X-Api-Key")
        if api_key:
            return "key:" + hashlib.sha256(api_key.encode()).hexdigest()[:32]
        header = request.headers.get("Authorization", "")
        if header[:6].lower() == "basic ":
            try:
                user = base64.b64decode(header[6:].strip(), validate=True).decode()
                return "user:" + user.partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                pass
        cookie = request.cookies.get(COOKIE_NAME)
        if cookie:
            return "web:" + hashlib.sha256(cookie.encode()).hexdigest()[:32]
    return "ip:" + (request.remote or "?")


def middleware(settings: Settings) -> Any:
    """Runs after authentication, so only authenticated clients spend tokens."""
    limiter = RateLimiter(settings.rate_limit, settings.rate_limit_burst)
    auth_enabled = settings.auth_enabled

    @web.middleware
    async def rate_limit(request: web.Request, handler: Any) -> web.StreamResponse:
        named = request.headers.get("X-Device-Id") or request.query.get("device_id")
        session = limited_session(request.path, named)
        if limiter.rate > 0 and request.method != "OPTIONS" and session is not None:
            wait = limiter.take(f"{client_key(request, auth_enabled)}|{session}")
            if wait > 0:
                response = error_response(
                    429,
                    "TOO_MANY_REQUESTS",
                    f"rate limit of {settings.rate_limit:g} requests/s per session "
                    f"(burst {settings.rate_limit_burst}) exceeded for {session!r}; "
                    f"retry in {wait:.2f} s",
                )
                response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
                return response
        return await handler(request)

    return rate_limit
