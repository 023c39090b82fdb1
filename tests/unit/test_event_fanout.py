"""Every listener of an event gets the one body the supervisor built for it.

The webhooks, the WebSocket and the dashboard's history each used to look the session up
in the registry and build GoWA's webhook JSON again. Here the real listeners are
subscribed to a real supervisor (no worker is started: the event is the status of a
session created stopped) and the registry counts its lookups.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gowa_py import protocol as p
from gowa_py.config import load_settings
from gowa_py.eventbody import EventBody
from gowa_py.gateway.eventstream import EventHub
from gowa_py.gateway.stats import DashboardStats
from gowa_py.models import SessionConfig, Webhook
from gowa_py.registry import Registry, SessionRecord
from gowa_py.storage.factory import SqliteStorage, sqlite_registry
from gowa_py.supervisor import Supervisor
from gowa_py.webhooks.deliverer import WebhookDeliverer


class CountingRegistry(Registry):
    """The SQLite registry, counting how often a session is looked up."""

    lookups = 0

    def get(self, session_id: str) -> SessionRecord | None:
        self.lookups += 1
        return super().get(session_id)


@pytest.fixture
async def supervisor(tmp_path: Path) -> AsyncIterator[Supervisor]:
    settings = load_settings({}, {"GOWA_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8"})
    sqlite = sqlite_registry(tmp_path / "gowa.db")
    registry = CountingRegistry(sqlite.db, sqlite.close)
    supervisor = Supervisor(settings, registry, tmp_path)
    try:
        yield supervisor
    finally:
        await supervisor.close()
        registry.close()


async def lookups_to_create(supervisor: Supervisor, session_id: str) -> int:
    """Registry lookups made while a session is created, which dispatches one event."""
    registry = supervisor.registry
    assert isinstance(registry, CountingRegistry)
    before = registry.lookups
    hook = Webhook(url="http://127.0.0.1:9/hook", events=[])
    await supervisor.create(session_id, SessionConfig(webhooks=[hook]), start=False)
    return registry.lookups - before


async def test_listeners_share_one_body_and_add_no_lookups(supervisor: Supervisor) -> None:
    without_listeners = await lookups_to_create(supervisor, "quiet")

    registry = supervisor.registry
    storage = SqliteStorage(supervisor.sessions_dir.parent)
    storage.registry = registry
    deliverer = WebhookDeliverer(supervisor.settings, storage)
    stats = DashboardStats(registry, retention_hours=1)
    hub = EventHub(registry)
    seen: list[EventBody] = []

    async def record(body: EventBody) -> None:
        seen.append(body)

    supervisor.subscribe(deliverer.on_event, durable=True)
    supervisor.subscribe(hub.publish)
    supervisor.subscribe(stats.on_event)
    supervisor.subscribe(record)
    try:
        assert await lookups_to_create(supervisor, "busy") == without_listeners
    finally:
        await deliverer.close(drain=0)

    (body,) = seen
    assert body.event.name == p.SESSION_STATUS and body.event.session_id == "busy"
    assert stats.recent_events("busy") == [body.json]
    assert stats.recent_events("busy")[0] is body.json
    (delivery,) = deliverer.outbox("busy").pending()
    assert delivery.body == body.encoded and delivery.event_id == body.event.id
