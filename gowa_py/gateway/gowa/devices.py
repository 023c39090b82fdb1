"""GoWA v9's device routes (``/devices...``) on the same sessions as ``/api/sessions``."""

from __future__ import annotations

import secrets

import msgspec
from aiohttp import web

from gowa_py.gateway import linking
from gowa_py.gateway.bodies import read_json
from gowa_py.gateway.errors import ApiError, envelope
from gowa_py.gateway.keys import SUPERVISOR
from gowa_py.gateway.params import path_session
from gowa_py.gateway.views import (
    connection_flags,
    deleted_message,
    device_json,
    device_webhook_json,
)
from gowa_py.gateway.webhooks import check_targets
from gowa_py.models import AddDevice, DeviceWebhook, SessionConfig, Webhook
from gowa_py.protocol import ErrorCode

routes = web.RouteTableDef()


def _webhooks(url: str | None, secret: str | None, events: str | None) -> list[Webhook]:
    if not url:
        return []
    try:
        return [
            msgspec.convert(
                {
                    "url": url,
                    "secret": secret,
                    "events": [e.strip() for e in (events or "").split(",") if e.strip()],
                },
                Webhook,
            )
        ]
    except Exception as exc:
        raise ApiError(ErrorCode.VALIDATION_ERROR, f"invalid webhook: {exc}") from exc


@routes.get("/devices")
async def list_devices(request: web.Request) -> web.Response:
    records = request.app[SUPERVISOR].list()
    return envelope([device_json(r) for r in records], message="List devices")


@routes.post("/devices")
async def add_device(request: web.Request) -> web.Response:
    body = await read_json(request, AddDevice, optional=True)
    session_id = body.device_id or f"device-{secrets.token_hex(4)}"
    config = SessionConfig(
        webhooks=_webhooks(body.webhook_url, body.webhook_secret, body.webhook_events)
    ).keeping_secrets(SessionConfig())
    await check_targets(request.app, config)
    supervisor = request.app[SUPERVISOR]
    record = await supervisor.create(session_id, config, start=False)
    result = device_json(record)
    if body.webhook_url:
        result.update({k: v for k, v in device_webhook_json(record).items() if k != "device_id"})
    return envelope(result, message="Device added")


@routes.get("/devices/{device_id}")
async def get_device(request: web.Request) -> web.Response:
    session_id = path_session(request, "device_id")
    return envelope(device_json(request.app[SUPERVISOR].require(session_id)), message="Device info")


@routes.delete("/devices/{device_id}")
async def remove_device(request: web.Request) -> web.Response:
    session_id = path_session(request, "device_id")
    unlinked = await request.app[SUPERVISOR].delete_session(session_id)
    return envelope(
        {"device_id": session_id, "unlinked": unlinked},
        message="Device removed" if unlinked else deleted_message(unlinked),
    )


@routes.get("/devices/{device_id}/login")
async def login_device(request: web.Request) -> web.Response:
    session_id = path_session(request, "device_id")
    qr = await linking.wait_for_qr(request.app[SUPERVISOR], session_id)
    return envelope(
        {
            "device_id": session_id,
            "qr_link": linking.qr_link(request, session_id),
            "qr_duration": linking.qr_duration(qr),
            "qr_code": qr.code,
        },
        message="Login success",
    )


@routes.post("/devices/{device_id}/login/code")
async def login_device_with_code(request: web.Request) -> web.Response:
    session_id = path_session(request, "device_id")
    code = await linking.pair_code(
        request.app[SUPERVISOR], session_id, request.query.get("phone", "")
    )
    return envelope({"device_id": session_id, "pair_code": code}, message="Login with code started")


@routes.post("/devices/{device_id}/logout")
async def logout_device(request: web.Request) -> web.Response:
    session_id = path_session(request, "device_id")
    await request.app[SUPERVISOR].logout(session_id)
    return envelope(None, message="Logout requested")


@routes.post("/devices/{device_id}/reconnect")
async def reconnect_device(request: web.Request) -> web.Response:
    session_id = path_session(request, "device_id")
    await request.app[SUPERVISOR].reconnect(session_id)
    return envelope(None, message="Reconnect requested")


@routes.get("/devices/{device_id}/status")
async def device_status(request: web.Request) -> web.Response:
    session_id = path_session(request, "device_id")
    record = request.app[SUPERVISOR].require(session_id)
    return envelope(
        {
            "device_id": session_id,
            **connection_flags(record),
        },
        message="Device status",
    )


@routes.get("/devices/{device_id}/webhook")
async def get_device_webhook(request: web.Request) -> web.Response:
    session_id = path_session(request, "device_id")
    record = request.app[SUPERVISOR].require(session_id)
    return envelope(device_webhook_json(record), message="Device webhook retrieved")


@routes.patch("/devices/{device_id}/webhook")
async def set_device_webhook(request: web.Request) -> web.Response:
    session_id = path_session(request, "device_id")
    supervisor = request.app[SUPERVISOR]
    record = supervisor.require(session_id)
    body = await read_json(request, DeviceWebhook)
    hooks = _webhooks(body.webhook_url, body.webhook_secret, body.webhook_events)
    config = msgspec.structs.replace(
        record.config, webhooks=hooks + record.config.webhooks[1:]
    ).keeping_secrets(record.config)
    await check_targets(request.app, config, record.config)
    record = supervisor.update_config(session_id, config)
    return envelope(device_webhook_json(record), message="Device webhook updated")
