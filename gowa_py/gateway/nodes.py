"""``GET /api/cluster/nodes``: the nodes of the cluster this gateway is one of."""

from __future__ import annotations

from aiohttp import web

from gowa_py.gateway.errors import ApiError, envelope
from gowa_py.gateway.keys import SETTINGS, SUPERVISOR
from gowa_py.protocol import ErrorCode
from gowa_py.registry import iso

routes = web.RouteTableDef()


@routes.get("/api/cluster/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    cluster = request.app[SUPERVISOR].cluster
    if cluster is None:
        raise ApiError(
            ErrorCode.NOT_A_CLUSTER,
            "this gateway is no cluster node: nodes share a PostgreSQL database_url",
        )
    ttl = request.app[SETTINGS].lease_ttl
    nodes = [
        {
            "id": node.id,
            "url": node.url,
            # "up" but silent for a whole lease term: dead, frozen or cut off.
            "status": "lost" if node.status == "up" and node.heartbeat_age > ttl else node.status,
            "last_heartbeat": iso(node.heartbeat),
            "heartbeat_age_s": round(node.heartbeat_age, 1),
            "sessions": node.sessions,
            "self": node.id == cluster.node_id,
        }
        for node in await cluster.nodes()
    ]
    return envelope(nodes, message=f"{len(nodes)} node(s)")
