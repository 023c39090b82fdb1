"""The nodes of the cluster this gateway is one of: ``GET /api/cluster/nodes``, and
``POST /api/cluster/nodes/{node_id}/drain`` (hand its sessions to the others)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gowa_py.cluster.leases import NodeRow
from gowa_py.cluster.node import ClusterNode, room_of
from gowa_py.gateway.errors import ApiError, envelope
from gowa_py.gateway.keys import SETTINGS, SUPERVISOR
from gowa_py.protocol import ErrorCode
from gowa_py.registry import iso

routes = web.RouteTableDef()


def _cluster(request: web.Request) -> ClusterNode:
    cluster = request.app[SUPERVISOR].cluster
    if cluster is None:
        raise ApiError(
            ErrorCode.NOT_A_CLUSTER,
            "this gateway is no cluster node: nodes share a PostgreSQL database_url",
        )
    return cluster


async def _nodes(request: web.Request, cluster: ClusterNode) -> list[dict[str, Any]]:
    ttl = request.app[SETTINGS].lease_ttl
    return [_node(node, cluster.node_id, ttl) for node in await cluster.nodes()]


def _node(node: NodeRow, own_id: str, ttl: float) -> dict[str, Any]:
    room = room_of(node)
    return {
        "id": node.id,
        "url": node.url,
        # Meant to be running but silent for a whole lease term: dead, frozen, cut off.
        "status": "lost" if node.status != "down" and node.heartbeat_age > ttl else node.status,
        "last_heartbeat": iso(node.heartbeat),
        "heartbeat_age_s": round(node.heartbeat_age, 1),
        "sessions": node.sessions,
        "capacity": node.capacity,
        "memory": node.memory,
        "memory_budget": node.memory_budget,
        "worker_memory": node.worker_memory,
        "memory_capacity": room.memory_capacity,
        "headroom": room.headroom,
        "limit": room.limit,
        "self": node.id == own_id,
    }


@routes.get("/api/cluster/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    nodes = await _nodes(request, _cluster(request))
    return envelope(nodes, message=f"{len(nodes)} node(s)")


@routes.post("/api/cluster/nodes/{node_id}/drain")
async def drain_node(request: web.Request) -> web.Response:
    """The node stops taking sessions over and hands its own to the others, a
    ``takeover_batch`` at a time (each stopped cleanly, then its lease given up); it
    stays draining until it is restarted. For upgrades: drain, wait for ``sessions``
    0, restart."""
    cluster = _cluster(request)
    node_id = request.match_info["node_id"]
    if not await cluster.drain(node_id):
        raise ApiError(ErrorCode.NOT_FOUND, f"no node {node_id[:64]!r} in the cluster")
    node = next(n for n in await _nodes(request, cluster) if n["id"] == node_id)
    return envelope(node, message=f"node {node_id!r} is draining")
