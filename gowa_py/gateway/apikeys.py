"""Scoped API keys: a key bound to some sessions, ``read`` (GET/HEAD only) or ``full``.

The global credential (``api_key``, ``api_key_hash``, basic auth, a dashboard login) stays
the admin: it alone manages keys (``/api/keys``, :mod:`gowa_py.gateway.keyadmin`), creates
and deletes sessions, and sees gateway-wide data. A scoped key reaches its own sessions'
routes and nothing else (:func:`authorize`; the matrix is in ``docs/security.md``).

A key is ``gowa_<id>_<secret>``: 12 hex digits of id, 256 random bits of secret. Only the
key's SHA-256 is stored (in ``gowa.db``): for a random 256-bit key one fast hash is as
strong as a slow one, and keeps every request cheap. The id finds the record; the digest
is compared in constant time. The key itself is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from aiohttp import web

from gowa_py.gateway.errors import ApiError
from gowa_py.protocol import ErrorCode
from gowa_py.registry import ApiKeyRecord
from gowa_py.storage.interfaces import RegistryStorage

KEY_RE = re.compile(r"^gowa_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
SAFE_METHODS = frozenset({"GET", "HEAD"})
SESSION_PREFIX = "/api/{session_id}"
# Routes any valid key may call: they read nothing about sessions.
ANY_KEY = frozenset(
    {"/healthz", "/health", "/readyz", "/openapi.json", "/docs", "/docs/assets/{name}"}
)
EVENTS_PATH = "/api/dashboard/events"
# Prefixed in form only: it lists every session.
ADMIN_ONLY = frozenset({"/app/devices"})
# A session's archive holds its account's keys: moving one is for the admin.
ADMIN_ONLY_SESSION_ROUTES = frozenset(
    {"/api/sessions/{session_id}/export", "/api/sessions/{session_id}/import"}
)
# GETs that change something (pairing, logging out, reconnecting, a new invite link).
FULL_ONLY_GETS = frozenset(
    {
        "/app/login",
        "/app/login-with-code",
        "/app/logout",
        "/app/reconnect",
        "/group/invite-link",
        "/devices/{device_id}/login",
    }
)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def verify(registry: RegistryStorage, key: str) -> ApiKeyRecord | None:
    """The record of a scoped key, or None (unknown id, wrong secret, not a scoped key)."""
    match = KEY_RE.match(key)
    if match is None:
        return None
    record = registry.get_key(match.group(1))
    if record is None or not hmac.compare_digest(digest(key), record.digest):
        return None
    return record


# ------------------------------------------------------------------ authorization


def _forbidden(message: str) -> ApiError:
    return ApiError(ErrorCode.FORBIDDEN, message)


def _sessions_named(
    request: web.Request, pattern: str, gowa_paths: frozenset[str]
) -> list[str] | None:
    """The sessions a route acts on; [] for one that touches none; None: admin only."""
    info = request.match_info
    method = request.method
    if pattern in ANY_KEY:
        return []
    if pattern == EVENTS_PATH:
        named = request.query.get("session_id")
        return [named] if named else []
    if pattern.startswith(SESSION_PREFIX + "/"):
        return None if pattern[len(SESSION_PREFIX) :] in ADMIN_ONLY else [info["session_id"]]
    if pattern in ADMIN_ONLY_SESSION_ROUTES:
        return None
    if pattern.startswith("/api/sessions/{session_id}"):
        deleting = method == "DELETE" and pattern == "/api/sessions/{session_id}"
        return None if deleting else [info["session_id"]]
    if pattern.startswith("/devices/{device_id}"):
        deleting = method == "DELETE" and pattern == "/devices/{device_id}"
        return None if deleting else [info["device_id"]]
    if pattern in gowa_paths and pattern not in ADMIN_ONLY:
        named = request.headers.get("X-Device-Id") or request.query.get("device_id")
        return [named or "default"]
    return None


def gowa_paths(router: web.UrlDispatcher) -> frozenset[str]:
    """The unprefixed GoWA routes: those also served under ``/api/{session_id}``."""
    patterns = {r.resource.canonical for r in router.routes() if r.resource is not None}
    return frozenset(
        p[len(SESSION_PREFIX) :]
        for p in patterns
        if p.startswith(SESSION_PREFIX + "/") and p[len(SESSION_PREFIX) :] in patterns
    )


def authorize(
    request: web.Request, sessions: frozenset[str], read_only: bool, gowa: frozenset[str]
) -> None:
    """Raise 403 unless a key bound to ``sessions`` may make this request. Decided from the
    matched route and the id it names, before anything looks the session up, so a 403
    says nothing about which sessions exist. ``gowa``: the :func:`gowa_paths`."""
    resource = request.match_info.route.resource
    if resource is None:  # no such route: the router's 404/405 follows
        return
    pattern = resource.canonical
    named = _sessions_named(request, pattern, gowa)
    if named is None:
        raise _forbidden("this API key is scoped to sessions; the route needs the admin key")
    for session_id in named:
        if session_id not in sessions:
            raise _forbidden(f"this API key cannot use session {session_id[:64]!r}")
    unprefixed = pattern[len(SESSION_PREFIX) :] if pattern.startswith(SESSION_PREFIX) else pattern
    if read_only and (request.method not in SAFE_METHODS or unprefixed in FULL_ONLY_GETS):
        raise _forbidden("this API key is read-only")
