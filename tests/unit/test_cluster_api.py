"""The cluster as the API shows it: ``GET /api/cluster/nodes`` and each session's ``node``."""

from __future__ import annotations

import asyncio
import time

from gowa_py.cluster.headroom import DEFAULT_WORKER_BYTES


async def test_a_postgresql_gateway_lists_itself_among_the_nodes(make_client, test_database):
    client = await make_client(
        {"GOWA_DATABASE_URL": test_database.url},
        node_id="n1",
        advertise_url="http://10.0.0.1:3000/",
    )
    response = await client.get("/api/cluster/nodes")
    assert response.status == 200, await response.text()
    nodes = {node["id"]: node for node in (await response.json())["results"]}
    me = nodes["n1"]
    assert (me["url"], me["status"], me["sessions"], me["self"]) == (
        "http://10.0.0.1:3000",
        "up",
        0,
        True,
    )
    assert me["heartbeat_age_s"] < 5 and me["last_heartbeat"]
    assert (me["capacity"], me["memory"]) == (1000, 0)  # max_sessions; no worker runs
    # No node_memory_mb: the machine's memory less the reserve, at the default estimate
    # of a worker until one is measured.
    assert me["memory_budget"] > 0 and me["worker_memory"] == 0
    assert me["memory_capacity"] == me["memory_budget"] // DEFAULT_WORKER_BYTES
    assert me["headroom"] == min(1000, me["memory_capacity"])
    assert me["limit"] == ("memory" if me["memory_capacity"] <= 1000 else "max_sessions")

    response = await client.post("/api/sessions", json={"session_id": "idle", "start": False})
    assert response.status == 201, await response.text()
    assert (await response.json())["results"]["node"] is None  # no node runs it
    await client.close()  # leaving the cluster marks the node down
    other = await make_client({"GOWA_DATABASE_URL": test_database.url}, node_id="n2")
    nodes = {
        node["id"]: node
        for node in (await (await other.get("/api/cluster/nodes")).json())["results"]
    }
    assert nodes["n1"]["status"] == "down" and nodes["n2"]["self"]
    assert (await other.delete("/api/sessions/idle")).status == 200


async def test_a_node_without_a_memory_limit_has_headroom_by_count_only(make_client, test_database):
    client = await make_client(
        {"GOWA_DATABASE_URL": test_database.url, "GOWA_NODE_MEMORY_MB": "0"}, node_id="n3"
    )
    response = await client.get("/api/cluster/nodes")
    me = next(node for node in (await response.json())["results"] if node["self"])
    assert (me["memory_budget"], me["memory_capacity"]) == (0, None)
    assert (me["headroom"], me["limit"]) == (1000, "max_sessions")
    await client.close()


async def test_the_nodes_max_sessions_add_up_on_creation(make_client, test_database):
    """The registry is the cluster's: creating a session is refused once the cluster holds
    its live nodes' max_sessions together, not one node's."""
    test_database.empty()  # what other tests of the run left
    env = {
        "GOWA_DATABASE_URL": test_database.url,
        "GOWA_MAX_SESSIONS": "1",
        "GOWA_LEASE_RENEW_INTERVAL": "1",
    }
    one = await make_client(env, node_id="m1")
    two = await make_client(env, node_id="m2")

    async def live() -> set[str]:
        nodes = (await (await one.get("/api/cluster/nodes")).json())["results"]
        return {n["id"] for n in nodes if n["status"] == "up"}

    deadline = time.monotonic() + 10
    while await live() != {"m1", "m2"}:
        assert time.monotonic() < deadline, await live()
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.5)  # a round of m1's after it saw m2: its view has it
    for session_id in ("c1", "c2"):
        response = await one.post("/api/sessions", json={"session_id": session_id, "start": False})
        assert response.status == 201, await response.text()
    response = await one.post("/api/sessions", json={"session_id": "c3", "start": False})
    body = await response.json()
    assert (response.status, body["code"]) == (409, "SESSION_LIMIT"), body
    assert body["message"].startswith("the cluster holds 2 sessions"), body
    # m2 has left: the cluster holds one node's max_sessions.
    await two.close()
    await asyncio.sleep(1.5)  # a round of m1's: m2 is down in its view
    assert (await one.delete("/api/sessions/c2")).status == 200
    response = await one.post("/api/sessions", json={"session_id": "c3", "start": False})
    body = await response.json()
    assert (response.status, body["code"]) == (409, "SESSION_LIMIT"), body
    assert body["message"].startswith("the cluster holds 1 sessions"), body
    assert (await one.delete("/api/sessions/c1")).status == 200
    response = await one.post("/api/sessions", json={"session_id": "c3", "start": False})
    assert response.status == 201, await response.text()
    assert (await one.delete("/api/sessions/c3")).status == 200


async def test_an_sqlite_gateway_is_no_cluster_node(make_client):
    client = await make_client()
    response = await client.get("/api/cluster/nodes")
    assert response.status == 409
    assert (await response.json())["code"] == "NOT_A_CLUSTER"
    response = await client.post("/api/sessions", json={"session_id": "s", "start": False})
    assert (await response.json())["results"]["node"] is None
