"""Building the aiohttp application: state, middlewares, routes, start-up and shutdown."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from gowa_py.cluster.relay import EventRelay
from gowa_py.config import Settings
from gowa_py.gateway import (
    bodies,
    dashboard,
    keyadmin,
    nodes,
    openapi,
    probes,
    ratelimit,
    sessions,
    transfer,
    webhooks,
)
from gowa_py.gateway.auth import Authenticator
from gowa_py.gateway.browser import Origins
from gowa_py.gateway.errors import error_middleware
from gowa_py.gateway.eventstream import EventHub
from gowa_py.gateway.forwarding import Forwarder
from gowa_py.gateway.gowa import devices, routing
from gowa_py.gateway.keys import (
    AUTH,
    EVENTS,
    METRICS,
    PROXY_POLICY,
    READINESS,
    REGISTRY,
    SESSION_VIEWS,
    SETTINGS,
    STORAGE,
    SUPERVISOR,
    WEBHOOKS,
    Readiness,
)
from gowa_py.gateway.metrics import Metrics
from gowa_py.gateway.views import SessionViews
from gowa_py.protocol import SandboxConfig
from gowa_py.storage.factory import open_storage
from gowa_py.supervisor import Supervisor
from gowa_py.webhooks.deliverer import WebhookDeliverer


def create_app(
    settings: Settings, data_dir: Path, sandbox: SandboxConfig | None = None
) -> web.Application:
    data_dir.mkdir(parents=True, exist_ok=True)
    storage = open_storage(settings.database_url, data_dir, settings.database_pooler_url)
    registry = storage.registry
    supervisor = Supervisor(
        settings, registry, data_dir, sandbox, worker_database=storage.worker_database
    )
    metrics = Metrics(supervisor)
    origins = Origins(settings)
    auth = Authenticator(settings, registry, origins, storage.sign_ins)
    forwarder = Forwarder(supervisor)
    app = web.Application(
        client_max_size=settings.largest_body,
        middlewares=[
            metrics.middleware(),
            error_middleware,
            origins.middleware(),
            bodies.timeout_middleware(settings.body_timeout),
            auth.middleware(),
            ratelimit.middleware(settings),
            # Last: a request reaches another node only authenticated and within limits.
            forwarder.middleware(),
        ],
    )
    app[SETTINGS] = settings
    app[REGISTRY] = registry
    app[STORAGE] = storage
    app[AUTH] = auth
    app[SUPERVISOR] = supervisor
    app[METRICS] = metrics
    app[SESSION_VIEWS] = SessionViews()
    app[PROXY_POLICY] = supervisor.proxy_policy
    cluster = supervisor.cluster
    hub = EventHub(registry, cluster.node_id if cluster is not None else None)
    app[EVENTS] = hub
    supervisor.subscribe(hub.publish)
    relay: EventRelay | None = None
    if cluster is not None and settings.database_url:
        # The other nodes' events on this node's stream, and this node's on theirs.
        relay = EventRelay(
            settings.database_url, cluster.node_id, hub.receive, hub.gap, hub.registry_changed
        )
        supervisor.subscribe(relay.on_event)
    deliverer = WebhookDeliverer(settings, storage)
    app[WEBHOOKS] = deliverer
    supervisor.subscribe(deliverer.on_event, durable=True)
    if cluster is not None:
        # Each node delivers the webhooks of the sessions it runs, and on taking one
        # over, what its previous node left in its outbox.
        deliverer.owns = cluster.holds
        cluster.on_claim.append(deliverer.adopt)

    readiness = Readiness()
    app[READINESS] = readiness
    app.add_routes(probes.routes)
    app.add_routes(sessions.routes)
    app.add_routes(transfer.routes)
    app.add_routes(devices.routes)
    app.add_routes([web.get("/api/dashboard/events", hub.handle)])
    app.add_routes(webhooks.routes)
    app.add_routes(nodes.routes)  # before GoWA's /api/{session_id}/... routes
    app.add_routes(routing.route_table())
    app.add_routes(openapi.routes)
    dashboard.setup(app)
    app.add_routes(keyadmin.routes)

    async def start(app: web.Application) -> None:
        if relay is not None:
            relay.start()
        await deliverer.start()
        await supervisor.start()
        readiness.ready = True

    async def stop(app: web.Application) -> None:
        readiness.ready = False
        await hub.close()

    async def cleanup(app: web.Application) -> None:
        # Workers first, so their last events still reach the outbox; then drain deliveries.
        await supervisor.close()
        if relay is not None:
            await relay.close()
        await deliverer.close(drain=settings.stop_timeout)
        storage.close()
        auth.close()
        await forwarder.close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    app.on_cleanup.append(cleanup)
    return app
