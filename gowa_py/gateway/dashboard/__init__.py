"""The operations dashboard's backend: its static files, its login, the JSON it reads and the
sandbox scan, one module each; :func:`setup` wires them into the gateway's app."""

from __future__ import annotations

from aiohttp import web

from gowa_py.gateway.auth import Authenticator
from gowa_py.gateway.dashboard import reads, sandboxscan, signin, static
from gowa_py.gateway.keys import SETTINGS, SUPERVISOR
from gowa_py.gateway.stats import DashboardStats
from gowa_py.storage.interfaces import RegistryStorage


def setup(app: web.Application, registry: RegistryStorage, auth: Authenticator) -> None:
    """Register the routes and the event counters (called by ``create_app``)."""
    supervisor = app[SUPERVISOR]
    stats = DashboardStats(registry, app[SETTINGS].metrics_retention_hours)
    app[reads.STATS] = stats
    app[signin.AUTH] = auth
    app[reads.REGISTRY] = registry
    supervisor.subscribe(stats.on_event)
    for module in (static, signin, reads, sandboxscan):
        app.add_routes(module.routes)

    async def start(app: web.Application) -> None:
        stats.start()

    async def stop(app: web.Application) -> None:
        await stats.close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
