"""Typed application state (aiohttp AppKeys), so handlers never guess what app[...] holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from gowa_py.config import Settings
    from gowa_py.gateway.events import EventHub
    from gowa_py.gateway.metrics import Metrics
    from gowa_py.gateway.views import SessionViews
    from gowa_py.supervisor import Supervisor
    from gowa_py.webhooks.deliverer import WebhookDeliverer
    from gowa_py.webhooks.policy import TargetPolicy

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
SUPERVISOR: web.AppKey[Supervisor] = web.AppKey("supervisor")
EVENTS: web.AppKey[EventHub] = web.AppKey("events")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
WEBHOOKS: web.AppKey[WebhookDeliverer] = web.AppKey("webhooks")
SESSION_VIEWS: web.AppKey[SessionViews] = web.AppKey("session_views")
PROXY_POLICY: web.AppKey[TargetPolicy] = web.AppKey("proxy_policy")
