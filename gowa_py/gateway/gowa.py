"""All GoWA operation routes in one list, for the app and for ``/openapi.json``."""

from __future__ import annotations

from aiohttp import web

from gowa_py.gateway import (
    gowa_api,
    gowa_chat,
    gowa_group,
    gowa_message,
    gowa_newsletter,
    gowa_send,
    gowa_user,
)
from gowa_py.gateway.gowa_api import OpRoute

OPERATION_ROUTES: list[OpRoute] = [
    *gowa_user.ROUTES,
    *gowa_send.ROUTES,
    *gowa_message.ROUTES,
    *gowa_chat.ROUTES,
    *gowa_group.ROUTES,
    *gowa_newsletter.ROUTES,
]


def route_table() -> list[web.RouteDef]:
    return [*gowa_user.PLAIN, *gowa_api.route_table(OPERATION_ROUTES)]
