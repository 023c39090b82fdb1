"""Typed application state (aiohttp AppKeys), so handlers never guess what app[...] holds.

Every key of the gateway's app is here. What a key holds is defined in a module that does
not read app state itself, so this module imports none that imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from gowa_py.config import Settings
    from gowa_py.gateway.auth import Authenticator
    from gowa_py.gateway.eventstream import EventHub
    from gowa_py.gateway.metrics import Metrics
    from gowa_py.gateway.stats import DashboardStats
    from gowa_py.gateway.views import SessionViews
    from gowa_py.storage.interfaces import GatewayStorage, RegistryStorage
    from gowa_py.supervisor import Supervisor
    from gowa_py.webhooks.deliverer import WebhookDeliverer
    from gowa_py.webhooks.policy import TargetPolicy


class Readiness:
    """Mutable flag: aiohttp forbids changing app state once the app has started."""

    ready = False


SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
REGISTRY: web.AppKey[RegistryStorage] = web.AppKey("registry")
STORAGE: web.AppKey[GatewayStorage] = web.AppKey("storage")
SUPERVISOR: web.AppKey[Supervisor] = web.AppKey("supervisor")
AUTH: web.AppKey[Authenticator] = web.AppKey("auth")
EVENTS: web.AppKey[EventHub] = web.AppKey("events")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
WEBHOOKS: web.AppKey[WebhookDeliverer] = web.AppKey("webhooks")
SESSION_VIEWS: web.AppKey[SessionViews] = web.AppKey("session_views")
PROXY_POLICY: web.AppKey[TargetPolicy] = web.AppKey("proxy_policy")
DASHBOARD_STATS: web.AppKey[DashboardStats] = web.AppKey("dashboard_stats")
READINESS: web.AppKey[Readiness] = web.AppKey("readiness", Readiness)
