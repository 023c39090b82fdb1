"""Scoped API keys: a key bound to some sessions, ``read`` (GET/HEAD only) or ``full``.

The global credential (``api_key``, ``api_key_hash``, basic auth, a dashboard login) stays
the admin: it alone manages keys (``/api/keys``), creates and deletes sessions, and sees
gateway-wide data. A scoped key reaches its own sessions' routes and nothing else
(:func:`authorize`; the matrix is in ``docs/security.md``).

A key is ``gowa_<id>_<secret>``: 12 hex digits of id, 256 random bits of secret. Only the
key's SHA-256 is stored (in ``gowa.db``): for a random 256-bit key one fast hash is as
strong as a slow one, and keeps every request cheap. The id finds the record; the digest
is compared in constant time. The key itself is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

from aiohttp import web

from gowa_py.gateway.bodies import read_json
from gowa_py.gateway.errors import ApiError, envelope
from gowa_py.gateway.keys import EVENTS, SETTINGS, SUPERVISOR
from gowa_py.models import CreateKey
from gowa_py.protocol import ErrorCode
from gowa_py.registry import ApiKeyRecord, iso
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

REGISTRY: web.AppKey[RegistryStorage] = web.AppKey("keys_registry", RegistryStorage)
GOWA_PATHS: web.AppKey[frozenset[str]] = web.AppKey("gowa_paths", frozenset)

routes = web.RouteTableDef()


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


def _sessions_named(request: web.Request, pattern: str) -> list[str] | None:
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
    if pattern in request.app[GOWA_PATHS] and pattern not in ADMIN_ONLY:
        named = request.headers.get("X-Device-Id") or request.query.get("device_id")
        return [named or "default"]
    return None


def authorize(request: web.Request, sessions: frozenset[str], read_only: bool) -> None:
    """Raise 403 unless a key bound to ``sessions`` may make this request. Decided from the
    matched route and the id it names, before anything looks the session up, so a 403
    says nothing about which sessions exist."""
    resource = request.match_info.route.resource
    if resource is None:  # no such route: the router's 404/405 follows
        return
    pattern = resource.canonical
    named = _sessions_named(request, pattern)
    if named is None:
        raise _forbidden("this API key is scoped to sessions; the route needs the admin key")
    for session_id in named:
        if session_id not in sessions:
            raise _forbidden(f"this API key cannot use session {session_id[:64]!r}")
    unprefixed = pattern[len(SESSION_PREFIX) :] if pattern.startswith(SESSION_PREFIX) else pattern
    if read_only and (request.method not in SAFE_METHODS or unprefixed in FULL_ONLY_GETS):
        raise _forbidden("this API key is read-only")


# ------------------------------------------------------------------------ routes


def key_json(record: ApiKeyRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "prefix": f"gowa_{record.id}_",
        "name": record.name,
        "sessions": list(record.sessions),
        "scope": record.scope,
        "created_at": iso(record.created_at),
    }


@routes.post("/api/keys")
async def create_key(request: web.Request) -> web.Response:
    if not request.app[SETTINGS].auth_enabled:
        raise ApiError(
            ErrorCode.AUTH_DISABLED,
            "scoped keys need an admin credential first (api_key, api_key_hash or basic_auth): "
            "without one every request is already let in",
        )
    body = await read_json(request, CreateKey)
    sessions = tuple(dict.fromkeys(body.sessions))
    supervisor = request.app[SUPERVISOR]
    for session_id in sessions:
        supervisor.require(session_id)
    key_id = secrets.token_hex(6)
    key = f"gowa_{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKeyRecord(key_id, body.name, sessions, body.scope, digest(key), time.time())
    request.app[REGISTRY].add_key(record)
    return envelope(
        {**key_json(record), "key": key},
        message="API key created; store it now, it is not shown again",
        status=201,
    )


@routes.get("/api/keys")
async def list_keys(request: web.Request) -> web.Response:
    records = request.app[REGISTRY].keys()
    return envelope([key_json(r) for r in records], message=f"{len(records)} key(s)")


@routes.delete("/api/keys/{key_id}")
async def revoke_key(request: web.Request) -> web.Response:
    key_id = request.match_info["key_id"]
    if not request.app[REGISTRY].delete_key(key_id):
        raise ApiError(ErrorCode.NOT_FOUND, f"no API key {key_id[:32]!r}")
    await request.app[EVENTS].disconnect(f"key:{key_id}")
    return envelope({"id": key_id}, message="API key revoked")


def setup(app: web.Application, registry: RegistryStorage) -> None:
    """Register the routes; call after every other route is added (the unprefixed GoWA
    routes are found as those also served under ``/api/{session_id}``)."""
    app[REGISTRY] = registry
    app.add_routes(routes)
    patterns = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    app[GOWA_PATHS] = frozenset(
        p[len(SESSION_PREFIX) :]
        for p in patterns
        if p.startswith(SESSION_PREFIX + "/") and p[len(SESSION_PREFIX) :] in patterns
    )
