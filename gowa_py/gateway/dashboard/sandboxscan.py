"""The dashboard's sandbox button: a simulated phone scans a session's live QR code."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from gowa_py import protocol as p
from gowa_py.gateway import linking
from gowa_py.gateway.bodies import read_json
from gowa_py.gateway.errors import ApiError, envelope
from gowa_py.gateway.keys import SETTINGS, SUPERVISOR
from gowa_py.gateway.params import path_session

SANDBOX_TIMEOUT_S = 15.0
PHONE_RE = re.compile(r"^[0-9]{5,15}$")

routes = web.RouteTableDef()


class SandboxScanBody(msgspec.Struct, forbid_unknown_fields=True):
    phone: str | None = None
    push_name: str | None = None


def sandbox_phone(session_id: str) -> str:
    """A stable sandbox number per session, so repeated scans reuse the same phone."""
    digits = int(hashlib.sha256(session_id.encode()).hexdigest(), 16) % 10**8
    return f"1999{digits:08d}"


async def _sandbox_call(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any]
) -> tuple[int, Any]:
    try:
        async with http.post(url, json=body) as response:
            try:
                data = await response.json(content_type=None)
            except ValueError:
                data = None
            return response.status, data
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ApiError(p.ErrorCode.SANDBOX_UNREACHABLE, f"cannot reach the sandbox: {exc}") from exc


def _sandbox_error(what: str, status: int, data: Any) -> ApiError:
    message = data.get("message") if isinstance(data, dict) else None
    return ApiError(
        p.ErrorCode.SANDBOX_ERROR, f"sandbox refused to {what} (HTTP {status}): {message or data}"
    )


@routes.post("/api/dashboard/sessions/{session_id}/sandbox-scan")
async def sandbox_scan(request: web.Request) -> web.Response:
    """Pair the session with a simulated phone: create it if needed, then scan the live QR."""
    session_id = path_session(request)
    sandbox = request.app[SETTINGS].sandbox
    if not sandbox:
        raise ApiError(p.ErrorCode.SANDBOX_DISABLED, "the gateway was not started with --sandbox")
    body = await read_json(request, SandboxScanBody, optional=True)
    phone = (body.phone or sandbox_phone(session_id)).strip().lstrip("+")
    if not PHONE_RE.match(phone):
        raise ApiError(p.ErrorCode.VALIDATION_ERROR, "phone must be 5 to 15 digits")
    supervisor = request.app[SUPERVISOR]
    qr = await linking.wait_for_qr(supervisor, session_id)
    base = sandbox.rstrip("/")
    timeout = aiohttp.ClientTimeout(total=SANDBOX_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as http:
        push_name = body.push_name or f"Sandbox {session_id}"
        status, data = await _sandbox_call(
            http, f"{base}/sim/phones", {"phone": phone, "push_name": push_name}
        )
        created = status == 201
        if status not in (201, 409):
            raise _sandbox_error("create the phone", status, data)
        status, data = await _sandbox_call(http, f"{base}/sim/phones/{phone}/scan", {"qr": qr.code})
        if status != 200:
            raise _sandbox_error("scan the QR", status, data)
    return envelope(
        {"phone": phone, "phone_created": created, "device": data},
        message=f"QR scanned by sandbox phone +{phone}",
    )
