"""Liveness, readiness and Prometheus routes."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gowa_py.gateway.errors import envelope
from gowa_py.gateway.keys import METRICS, READINESS, SUPERVISOR
from gowa_py.protocol import ErrorCode

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return envelope({"status": "ok"}, message="alive")


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    """GoWA's plain-text probe."""
    return web.Response(text="OK")


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    if not request.app[READINESS].ready:
        return envelope(
            {"status": "starting"}, message="not ready", code=ErrorCode.NOT_READY, status=503
        )
    supervisor = request.app[SUPERVISOR]
    return envelope({"status": "ready", "sessions": supervisor.session_count()}, message="ready")


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    response = web.Response(body=body)
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response
