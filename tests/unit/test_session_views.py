"""The cached session JSON (``GET /api/sessions`` and ``/api/sessions/{id}``) is never stale.

Every input of a session's JSON is changed in turn (registry writes through the API and
through the supervisor, the worker's pid, restarts and samples) and the next answer must
show it, as a freshly encoded one would.
"""

import time

import msgspec

from gowa_py import protocol as p
from gowa_py.gateway.keys import SESSION_VIEWS, SUPERVISOR
from gowa_py.gateway.views import SessionViews, session_json
from gowa_py.supervisor.sampler import Sample


async def _list(client):
    response = await client.get("/api/sessions")
    assert response.status == 200
    return (await response.json())["results"]


async def _one(client, session_id):
    response = await client.get(f"/api/sessions/{session_id}")
    assert response.status == 200
    return (await response.json())["results"]


def _fresh(app):
    """What the list looks like encoded from scratch, without the cache."""
    supervisor = app[SUPERVISOR]
    rows = [session_json(r, supervisor.worker_info(r.id)) for r in supervisor.list()]
    return msgspec.json.decode(msgspec.json.encode(rows))


class FakeProcess:
    def __init__(self, pid):
        self.pid = pid
        self.returncode = None


async def test_list_follows_every_change(make_client):
    client = await make_client()
    app = client.server.app
    supervisor = app[SUPERVISOR]
    for session_id in ("a1", "b2"):
        response = await client.post(
            "/api/sessions", json={"session_id": session_id, "start": False}
        )
        assert response.status == 201
    first = await _list(client)
    assert [s["id"] for s in first] == ["a1", "b2"]
    assert await _list(client) == first == _fresh(app)

    # Config through the API.
    hook = {"webhooks": [{"url": "https://hooks.example.com/crm", "events": ["message"]}]}
    response = await client.patch("/api/sessions/a1", json={"config": hook})
    assert response.status == 200, await response.text()
    listed = await _list(client)
    assert listed[0]["config"]["webhooks"][0]["url"] == "https://hooks.example.com/crm"
    assert (await _one(client, "a1"))["config"] == listed[0]["config"]

    # Registry writes made by the supervisor (status, me, activity), not by a request.
    supervisor.registry.set_status("b2", p.SessionState.CONNECTED)
    supervisor.registry.set_me("b2", p.Me(jid="5511900000002@s.whatsapp.net", push_name="B"))
    supervisor.registry.set_event_seq("b2", 1, activity=time.time())
    listed = await _list(client)
    assert listed[1]["status"] == "CONNECTED"
    assert listed[1]["me"] == {"jid": "5511900000002@s.whatsapp.net", "push_name": "B"}
    assert listed[1]["last_activity"] is not None
    assert await _one(client, "b2") == listed[1]

    # The worker: a pid appears, a sample arrives, it restarts, then it exits.
    runner = supervisor.runners["b2"]
    runner.process = FakeProcess(4242)
    runner.started_at = time.time()
    assert (await _list(client))[1]["worker"]["pid"] == 4242
    runner.sample = Sample(rss=3, pss=2, uss=1, cpu_percent=1.5)
    worker = (await _one(client, "b2"))["worker"]
    assert worker["memory"] == {"rss": 3, "pss": 2, "uss": 1}
    assert worker["cpu_percent"] == 1.5
    runner.restarts += 1
    assert (await _list(client))[1]["worker"]["restarts"] == 1
    runner.process.returncode = -9
    worker = (await _list(client))[1]["worker"]
    assert worker["pid"] is None and worker["memory"] == {"rss": 0, "pss": 0, "uss": 0}
    assert await _list(client) == _fresh(app)

    # Sessions come and go.
    response = await client.post("/api/sessions", json={"session_id": "a0", "start": False})
    assert response.status == 201
    assert [s["id"] for s in await _list(client)] == ["a0", "a1", "b2"]
    assert (await client.delete("/api/sessions/a1")).status == 200
    assert [s["id"] for s in await _list(client)] == ["a0", "b2"]
    assert await _list(client) == _fresh(app)
    assert set(app[SESSION_VIEWS]._one) == {"a0", "b2"}


async def test_unchanged_list_is_not_encoded_again(make_client):
    client = await make_client()
    for session_id in ("a1", "b2"):
        await client.post("/api/sessions", json={"session_id": session_id, "start": False})
    views: SessionViews = client.server.app[SESSION_VIEWS]
    await _list(client)
    cached = views._list
    await _list(client)
    assert views._list is cached
