"""The operations dashboard's backend: its static files, its login, the JSON it reads and the
sandbox scan, one module each; :func:`setup` wires them into the gateway's app."""

from __future__ import annotations

from aiohttp import web

from gowa_py.gateway.dashboard import reads, sandboxscan, signin, static
from gowa_py.gateway.keys import DASHBOARD_STATS, REGISTRY, SETTINGS, SUPERVISOR
from gowa_py.gateway.stats import DashboardStats


def setup(app: web.Application) -> None:
    """Register the routes and the event counters (called by ``create_app``)."""
    supervisor = app[SUPERVISOR]
    stats = DashboardStats(app[REGISTRY], app[SETTINGS].metrics_retention_hours)
    app[DASHBOARD_STATS] = stats
    supervisor.subscribe(stats.on_event)
    for module in (static, signin, reads, sandboxscan):
        app.add_routes(module.routes)

    async def start(app: web.Application) -> None:
        stats.start()

    async def stop(app: web.Application) -> None:
        await stats.close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
