"""The JSON the dashboard reads: gateway info, totals, sessions, metrics, events, exports."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from gowa_py import __version__
from gowa_py import protocol as p
from gowa_py.gateway.errors import ApiError, envelope
from gowa_py.gateway.keys import DASHBOARD_STATS, REGISTRY, SETTINGS, SUPERVISOR
from gowa_py.gateway.params import path_session
from gowa_py.gateway.views import session_json
from gowa_py.registry import iso
from gowa_py.supervisor import Supervisor

MAX_POINTS = 720


routes = web.RouteTableDef()


def _phone_of(record_json: dict[str, Any]) -> str | None:
    me = record_json.get("me")
    if not me or not me.get("jid"):
        return None
    return str(me["jid"]).split("@", 1)[0].split(":", 1)[0]


def _dashboard_session(supervisor: Supervisor, record: Any, now: float) -> dict[str, Any]:
    info = supervisor.worker_info(record.id)
    data = session_json(record, info, supervisor.node_of(record.id))
    started = info.started_at if info is not None and info.pid is not None else None
    data["uptime_s"] = round(now - started, 1) if started is not None else None
    data["phone"] = _phone_of(data)
    return data


@routes.get("/api/dashboard/info")
async def info(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    cluster = request.app[SUPERVISOR].cluster
    return envelope(
        {
            "version": __version__,
            # This node's id in a cluster (None: no cluster): the dashboard shows its
            # Cluster page and the sessions' node column only then.
            "node": cluster.node_id if cluster is not None else None,
            "sandbox": settings.sandbox,
            "sample_interval": settings.sample_interval,
            "metrics_retention_hours": settings.metrics_retention_hours,
            "auth_required": settings.auth_enabled,
        }
    )


@routes.get("/api/dashboard/stats")
async def stats(request: web.Request) -> web.Response:
    """Totals; "today" starts at the browser's midnight (``tz_offset`` = JS getTimezoneOffset)."""
    tz_offset = _int_query(request, "tz_offset", 0, -14 * 60, 14 * 60) * 60
    now = time.time()
    day_start = ((now - tz_offset) // 86400) * 86400 + tz_offset
    supervisor = request.app[SUPERVISOR]
    records = supervisor.list()
    by_status = {state.value: 0 for state in p.SessionState}
    for record in records:
        by_status[record.status.value] += 1
    memory = {"rss": 0, "pss": 0, "uss": 0}
    workers = 0
    for info in supervisor.workers().values():
        if info.pid is not None:
            workers += 1
            memory["rss"] += info.sample.rss
            memory["pss"] += info.sample.pss
            memory["uss"] += info.sample.uss
    for row in _elsewhere(request, now).values():
        workers += 1
        for kind in memory:
            memory[kind] += row[kind]
    received, sent = request.app[DASHBOARD_STATS].totals_since(day_start)
    return envelope(
        {
            "sessions": len(records),
            "connected": by_status[p.SessionState.CONNECTED.value],
            "by_status": by_status,
            "workers": workers,
            "memory": memory,
            "messages_today": {"received": received, "sent": sent, "since": iso(day_start)},
            "gateway_uptime_s": round(now - supervisor.started_at, 1),
        }
    )


@routes.get("/api/dashboard/sessions")
async def sessions(request: web.Request) -> web.Response:
    supervisor = request.app[SUPERVISOR]
    now = time.time()
    items = [_dashboard_session(supervisor, r, now) for r in supervisor.list()]
    elsewhere = _elsewhere(request, now)
    for item in items:
        row = elsewhere.get(item["id"])
        if row is not None:
            item["worker"]["memory"] = {"rss": row["rss"], "pss": row["pss"], "uss": row["uss"]}
            item["worker"]["cpu_percent"] = round(row["cpu"], 2)
    return envelope(items, message=f"{len(items)} session(s)")


def _elsewhere(request: web.Request, now: float) -> dict[str, dict[str, Any]]:
    """The last sample of each session another node of the cluster runs, as that node
    wrote it to the registry (none older than three sampling intervals): the dashboard
    of every node shows every session's worker."""
    supervisor = request.app[SUPERVISOR]
    cluster = supervisor.cluster
    if cluster is None:
        return {}
    running = supervisor.nodes()
    since = now - 3 * request.app[SETTINGS].sample_interval
    latest = {row["session_id"]: row for row in request.app[REGISTRY].samples_since(since)}
    return {
        session_id: row
        for session_id, row in latest.items()
        if running.get(session_id) not in (None, cluster.node_id)
    }


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(p.ErrorCode.VALIDATION_ERROR, f"{name} must be an integer") from exc
    if not low <= value <= high:
        raise ApiError(p.ErrorCode.VALIDATION_ERROR, f"{name} must be between {low} and {high}")
    return value


def memory_series(samples: list[dict[str, Any]], since: float, step: float) -> dict[str, Any]:
    """Samples averaged into ``step``-second buckets, aligned for the chart (None = no data)."""
    buckets: dict[float, dict[str, list[int]]] = {}
    names: set[str] = set()
    for row in samples:
        slot = since + ((row["ts"] - since) // step) * step
        buckets.setdefault(slot, {}).setdefault(row["session_id"], []).append(row["pss"])
        names.add(row["session_id"])
    timestamps = sorted(buckets)
    series = {
        name: [
            round(sum(values) / len(values)) if (values := buckets[ts].get(name)) else None
            for ts in timestamps
        ]
        for name in sorted(names)
    }
    return {"timestamps": timestamps, "pss": series}


@routes.get("/api/dashboard/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Memory per session, messages per hour (at least 24 h) and connected sessions."""
    settings = request.app[SETTINGS]
    max_minutes = max(1, int(settings.metrics_retention_hours * 60))
    minutes = _int_query(request, "minutes", min(60, max_minutes), 1, max_minutes)
    now = time.time()
    since = now - minutes * 60
    step = max(settings.sample_interval, minutes * 60 / MAX_POINTS)
    registry = request.app[REGISTRY]
    stats = request.app[DASHBOARD_STATS]
    memory = memory_series(registry.samples_since(since), since, step)
    connected = stats.connected_series(since)
    records = request.app[SUPERVISOR].list()
    connected.append(
        {
            "ts": now,
            "connected": sum(r.status == p.SessionState.CONNECTED for r in records),
            "sessions": len(records),
        }
    )
    hours_since = now - max(minutes * 60, 23 * 3600)
    return envelope(
        {
            "minutes": minutes,
            "since": since,
            "until": now,
            "step_s": step,
            "memory": memory,
            "messages_per_hour": stats.messages_per_hour(hours_since, now),
            "connected": [{**point, "ts": max(point["ts"], since)} for point in connected],
        }
    )


@routes.get("/api/dashboard/sessions/{session_id}")
async def session_detail(request: web.Request) -> web.Response:
    session_id = path_session(request)
    supervisor = request.app[SUPERVISOR]
    data = _dashboard_session(supervisor, supervisor.require(session_id), time.time())
    data["transitions"] = [
        {**row, "at": iso(row["at"])} for row in request.app[REGISTRY].transitions(session_id, 20)
    ]
    return envelope(data)


@routes.get("/api/dashboard/sessions/{session_id}/events")
async def session_events(request: web.Request) -> web.Response:
    """The session's recent events (kept in memory), so the live view starts with history."""
    session_id = path_session(request)
    limit = _int_query(request, "limit", 100, 0, 1000)
    return envelope(request.app[DASHBOARD_STATS].recent_events(session_id, limit))


@routes.get("/api/dashboard/sessions/{session_id}/export")
async def export(request: web.Request) -> web.Response:
    """A JSON download: the session, its transitions, recent events and resource history."""
    session_id = sid = path_session(request)
    supervisor = request.app[SUPERVISOR]
    registry = request.app[REGISTRY]
    stats = request.app[DASHBOARD_STATS]
    now = time.time()
    retention = request.app[SETTINGS].metrics_retention_hours * 3600
    document = {
        "exported_at": iso(now),
        "gateway_version": __version__,
        "session": _dashboard_session(supervisor, supervisor.require(session_id), now),
        "transitions": [
            {**row, "at": iso(row["at"])} for row in registry.transitions(session_id, 1000)
        ],
        "events": stats.recent_events(session_id),
        "metrics": [r for r in registry.samples_since(now - retention) if r["session_id"] == sid],
        "messages_per_hour": [
            r for r in stats.message_counts(now - retention) if r["session_id"] == sid
        ],
    }
    response = envelope(document, message="Session export")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    response.headers["Content-Disposition"] = (
        f'attachment; filename="gowa-session-{session_id}-{stamp}.json"'
    )
    return response
