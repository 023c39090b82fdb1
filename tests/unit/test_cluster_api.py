"""The cluster as the API shows it: ``GET /api/cluster/nodes`` and each session's ``node``."""

from __future__ import annotations

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


async def test_an_sqlite_gateway_is_no_cluster_node(make_client):
    client = await make_client()
    response = await client.get("/api/cluster/nodes")
    assert response.status == 409
    assert (await response.json())["code"] == "NOT_A_CLUSTER"
    response = await client.post("/api/sessions", json={"session_id": "s", "start": False})
    assert (await response.json())["results"]["node"] is None
