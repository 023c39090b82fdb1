"""``/api/keys``: the admin creates, lists and revokes scoped API keys.

What a key may do is decided in :mod:`gowa_py.gateway.apikeys`; the key itself is shown
once, when it is created, and only its digest is stored.
"""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from gowa_py.gateway.apikeys import digest
from gowa_py.gateway.bodies import read_json
from gowa_py.gateway.errors import ApiError, envelope
from gowa_py.gateway.keys import EVENTS, REGISTRY, SETTINGS, SUPERVISOR
from gowa_py.models import CreateKey
from gowa_py.protocol import ErrorCode
from gowa_py.registry import ApiKeyRecord, iso

routes = web.RouteTableDef()


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
