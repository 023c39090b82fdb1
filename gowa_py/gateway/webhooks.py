"""Webhook delivery routes: list a session's deliveries, redeliver one (README, "Webhooks")."""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from gowa_py.gateway.errors import ApiError, envelope
from gowa_py.gateway.keys import PROXY_POLICY, WEBHOOKS
from gowa_py.gateway.params import path_session
from gowa_py.models import SessionConfig
from gowa_py.protocol import ErrorCode
from gowa_py.webhooks.outbox import STATUSES
from gowa_py.webhooks.policy import BlockedTarget

routes = web.RouteTableDef()

MAX_LIMIT = 500
SOCKS_PORT = 1080


async def check_targets(
    app: web.Application, config: SessionConfig, previous: SessionConfig | None = None
) -> None:
    """Refuse at configuration time what the deliverer would refuse anyway (IP literals),
    and a new proxy on an address the SSRF policy refuses.

    The proxy is dialled by the worker, past the gateway's resolver, so its host is resolved
    and judged here (against ``proxy_allow_networks``): a proxy is a way to make a worker
    connect anywhere, and its errors tell which ports are open. A proxy left as it was
    (``previous``) is not resolved again: every worker start judges it anyway, and a PATCH
    of another field must not fail while its name does not resolve.
    """
    if config.proxy is not None and (previous is None or config.proxy != previous.proxy):
        await _check_proxy(app, config.proxy)
    policy = app[WEBHOOKS].policy
    for index, hook in enumerate(config.webhooks):
        try:
            policy.check_literal(URL(hook.url).host or "")
        except BlockedTarget as exc:
            raise ApiError(
                ErrorCode.VALIDATION_ERROR, f"$.config.webhooks[{index}].url: {exc}"
            ) from exc
        except ValueError as exc:  # includes UnicodeError from a host that is not valid IDNA
            raise ApiError(
                ErrorCode.VALIDATION_ERROR, f"$.config.webhooks[{index}].url is not a valid URL"
            ) from exc


async def _check_proxy(app: web.Application, proxy: str) -> None:
    try:
        url = URL(proxy)
        host, port = url.host, url.port or SOCKS_PORT
    except ValueError as exc:  # includes UnicodeError from a host that is not valid IDNA
        raise ApiError(ErrorCode.VALIDATION_ERROR, "$.config.proxy is not a valid URL") from exc
    if not host:
        raise ApiError(ErrorCode.VALIDATION_ERROR, "$.config.proxy has no host")
    try:
        await app[PROXY_POLICY].check_host(host, port)
    except BlockedTarget as exc:
        raise ApiError(ErrorCode.VALIDATION_ERROR, f"$.config.proxy: {exc}") from exc


@routes.get("/api/{session_id}/webhooks/deliveries")
async def list_deliveries(request: web.Request) -> web.Response:
    session_id = path_session(request)
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(ErrorCode.VALIDATION_ERROR, f"status must be one of {', '.join(STATUSES)}")
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError as exc:
        raise ApiError(ErrorCode.VALIDATION_ERROR, "limit must be an integer") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(ErrorCode.VALIDATION_ERROR, f"limit must be between 1 and {MAX_LIMIT}")
    outbox = request.app[WEBHOOKS].outbox(session_id)
    deliveries = [d.public() for d in outbox.list(status, limit)]
    return envelope(
        {"counts": outbox.counts(), "deliveries": deliveries},
        message=f"{len(deliveries)} deliveries",
    )


@routes.post("/api/{session_id}/webhooks/deliveries/{delivery_id}/redeliver")
async def redeliver(request: web.Request) -> web.Response:
    session_id = path_session(request)
    delivery_id = request.match_info["delivery_id"]
    delivery = request.app[WEBHOOKS].redeliver(session_id, delivery_id)
    if delivery is None:
        raise ApiError(
            ErrorCode.DELIVERY_NOT_FOUND, f"no delivery {delivery_id!r} in {session_id!r}"
        )
    return envelope(delivery.public(), message="Delivery queued again")
