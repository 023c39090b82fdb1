"""GoWA's ``/user/*`` operations (and ``/app/*`` additions: passkey, info)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gowa_py import __version__
from gowa_py import operations as ops
from gowa_py.gateway.errors import ApiError, envelope
from gowa_py.gateway.gowa_api import OpRoute
from gowa_py.gateway.keys import SETTINGS
from gowa_py.protocol import ErrorCode


async def passkey_status(request: web.Request, session_id: str, op: Any) -> web.Response:
    """No passkey login is ever pending: sessions log in by QR code or pairing code."""
    return envelope({"device_id": session_id, "status": "none"}, "Passkey pairing status")


async def passkey_not_pending(request: web.Request, session_id: str, op: Any) -> web.Response:
    raise ApiError(
        ErrorCode.PASSKEY_NOT_PENDING,
        f"session {session_id!r} has no pending passkey request; log in with /app/login "
        "(QR code) or /app/login-with-code",
    )


async def app_info(request: web.Request) -> web.Response:
    """GoWA's ``/app/info``: server version and upload limits (no session involved)."""
    limit = int(request.app[SETTINGS].max_body_mb * 1024 * 1024)
    return envelope(
        {
            "version": __version__,
            "os": "linux",
            "base_path": "",
            "max_file_size": limit,
            "max_video_size": limit,
            "max_image_size": limit,
            "chatwoot_enabled": False,
        },
        "Fetch app info success",
    )


APP, USER = "app", "user"

PLAIN = [web.get("/app/info", app_info), web.get("/api/{session_id}/app/info", app_info)]

ROUTES = [
    OpRoute("GET", "/app/passkey", ops.PasskeyStatus, APP, "Passkey status", local=passkey_status),
    OpRoute(
        "POST",
        "/app/passkey/response",
        ops.PasskeyResponse,
        APP,
        "Answer a passkey challenge",
        body="json",
        local=passkey_not_pending,
    ),
    OpRoute(
        "POST",
        "/app/passkey/confirm",
        ops.PasskeyConfirm,
        APP,
        "Confirm passkey pairing",
        body="json",
        local=passkey_not_pending,
    ),
    OpRoute("GET", "/user/info", ops.UserInfo, USER, "User info"),
    OpRoute("GET", "/user/avatar", ops.UserAvatar, USER, "User avatar"),
    OpRoute(
        "POST",
        "/user/avatar",
        ops.ChangeAvatar,
        USER,
        "Change own avatar",
        body="form",
        media=("avatar",),
    ),
    OpRoute("POST", "/user/pushname", ops.ChangePushName, USER, "Change push name", body="json"),
    OpRoute("GET", "/user/my/privacy", ops.MyPrivacy, USER, "Own privacy settings"),
    OpRoute("GET", "/user/my/groups", ops.MyGroups, USER, "Joined groups"),
    OpRoute("GET", "/user/my/newsletters", ops.MyNewsletters, USER, "Followed newsletters"),
    OpRoute("GET", "/user/my/contacts", ops.MyContacts, USER, "Contacts"),
    OpRoute("GET", "/user/check", ops.UserCheck, USER, "Is a number on WhatsApp"),
    OpRoute("GET", "/user/business-profile", ops.BusinessProfile, USER, "Business profile"),
]
