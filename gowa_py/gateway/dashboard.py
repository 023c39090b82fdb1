"""The operations dashboard: its static files, its JSON routes and its login.

The page (``dashboard/`` at the repository root) is plain ES modules; its one library,
uPlot, comes from npm into ``dashboard/node_modules`` (``make dashboard-deps``) and is
served from here, so the dashboard works with no internet. Only files named in
:data:`VENDOR_FILES` or living in ``dashboard/app`` (and its :data:`APP_FOLDERS`) are
reachable, never the rest of ``node_modules``.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from gowa_py import __version__
from gowa_py import protocol as p
from gowa_py.gateway import assets, login
from gowa_py.gateway.auth import Authenticator
from gowa_py.gateway.bodies import read_json
from gowa_py.gateway.errors import ApiError, envelope
from gowa_py.gateway.keys import SETTINGS, SUPERVISOR
from gowa_py.gateway.params import path_session
from gowa_py.gateway.principal import PRINCIPAL
from gowa_py.gateway.stats import DashboardStats
from gowa_py.gateway.views import session_json
from gowa_py.gateway.websessions import COOKIE_NAME
from gowa_py.registry import iso
from gowa_py.storage.interfaces import RegistryStorage
from gowa_py.supervisor import Supervisor

DASHBOARD_DIR = assets.dashboard_dir()
APP_FILE = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(js|css|svg)$")
#: The subfolders of ``dashboard/app`` served as ``/dashboard/app/<folder>/<file>``.
APP_FOLDERS = frozenset({"panels"})
VENDOR_FILES = {
    "uPlot.esm.js": "uplot/dist/uPlot.esm.js",
    "uPlot.min.css": "uplot/dist/uPlot.min.css",
}
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
MAX_POINTS = 720
SANDBOX_TIMEOUT_S = 15.0
PHONE_RE = re.compile(r"^[0-9]{5,15}$")

STATS: web.AppKey[DashboardStats] = web.AppKey("dashboard_stats")
AUTH: web.AppKey[Authenticator] = web.AppKey("dashboard_auth")
REGISTRY: web.AppKey[RegistryStorage] = web.AppKey("dashboard_registry")

routes = web.RouteTableDef()


def setup(app: web.Application, registry: RegistryStorage, auth: Authenticator) -> None:
    """Register the routes and the event counters (called by ``create_app``)."""
    supervisor = app[SUPERVISOR]
    stats = DashboardStats(registry, app[SETTINGS].metrics_retention_hours)
    app[STATS] = stats
    app[AUTH] = auth
    app[REGISTRY] = registry
    supervisor.subscribe(stats.on_event)
    app.add_routes(routes)

    async def start(app: web.Application) -> None:
        stats.start()

    async def stop(app: web.Application) -> None:
        await stats.close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)


# ------------------------------------------------------------------ static files


def _file(path: Path, content_type: str) -> web.FileResponse:
    if not path.is_file():
        hint = " (run `make dashboard-deps`)" if "node_modules" in path.parts else ""
        raise ApiError(p.ErrorCode.NOT_FOUND, f"dashboard file {path.name} is missing{hint}")
    response = web.FileResponse(path, headers=SECURITY_HEADERS)
    response.content_type = content_type
    return response


@routes.get("/dashboard")
@routes.get("/dashboard/")
async def index(request: web.Request) -> web.FileResponse:
    return _file(DASHBOARD_DIR / "index.html", "text/html")


@routes.get("/dashboard/app/{name}")
@routes.get("/dashboard/app/{folder}/{name}")
async def app_file(request: web.Request) -> web.FileResponse:
    folder = request.match_info.get("folder", "")
    name = request.match_info["name"]
    if (folder and folder not in APP_FOLDERS) or not APP_FILE.match(name):
        raise ApiError(p.ErrorCode.NOT_FOUND, "no such dashboard file")
    path = DASHBOARD_DIR / "app" / folder / name
    return _file(path, CONTENT_TYPES[path.suffix])


@routes.get("/dashboard/vendor/{name}")
async def vendor_file(request: web.Request) -> web.FileResponse:
    relative = VENDOR_FILES.get(request.match_info["name"])
    if relative is None:
        raise ApiError(p.ErrorCode.NOT_FOUND, "no such dashboard file")
    path = DASHBOARD_DIR / "node_modules" / relative
    return _file(path, CONTENT_TYPES[path.suffix])


# ------------------------------------------------------------------------ login


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    api_key: str | None = None
    username: str | None = None
    password: str | None = None


def _auth_state(request: web.Request) -> dict[str, Any]:
    auth = request.app[AUTH]
    session = auth.web_session(request) if auth.enabled else None
    settings = request.app[SETTINGS]
    return {
        "auth_required": auth.enabled,
        "authenticated": not auth.enabled or session is not None or PRINCIPAL in request,
        "methods": [
            name
            for name, on in (
                ("api_key", bool(settings.api_key or settings.api_key_hash)),
                ("basic", bool(settings.basic_auth)),
            )
            if on
        ],
        # Readable by same-origin scripts only; lets a reloaded page recover its token.
        "csrf_token": session.csrf if session is not None else None,
        "expires_at": iso(session.expires_at) if session is not None else None,
    }


@routes.get("/api/dashboard/auth")
async def auth_state(request: web.Request) -> web.Response:
    """Public: whether the page must show its login form."""
    return envelope(_auth_state(request))


@routes.post("/api/dashboard/login")
async def login_route(request: web.Request) -> web.Response:
    auth = request.app[AUTH]
    if not auth.enabled:
        return envelope(_auth_state(request), message="No credentials are configured")
    refusal = auth.blocked(request)
    if refusal is not None:
        raise refusal
    sessions = auth.web_sessions
    body = await read_json(request, LoginBody)
    if body.api_key and auth.scoped_key(body.api_key) is not None:
        raise ApiError(
            p.ErrorCode.FORBIDDEN,
            "a scoped API key cannot log in to the dashboard; use the admin key",
        )
    if body.api_key:
        user, ok = "api-key", await auth.check_api_key(body.api_key)
    elif body.username and body.password is not None:
        user, ok = body.username, auth.check_credentials(body.username, body.password)
    else:
        raise ApiError(p.ErrorCode.VALIDATION_ERROR, "send api_key, or username and password")
    if not ok:
        auth.failed(request)
        raise ApiError(p.ErrorCode.UNAUTHORIZED, "wrong credentials")
    token, session = sessions.create(user)
    response = envelope(
        {
            "auth_required": True,
            "authenticated": True,
            "csrf_token": session.csrf,
            "expires_at": iso(session.expires_at),
        },
        message="Logged in",
    )
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=int(sessions.ttl),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure or request.headers.get("X-Forwarded-Proto") == "https",
    )
    return response


@routes.post("/api/dashboard/logout")
async def logout_route(request: web.Request) -> web.Response:
    request.app[AUTH].web_sessions.drop(request.cookies.get(COOKIE_NAME))
    response = envelope(None, message="Logged out")
    response.del_cookie(COOKIE_NAME, path="/")
    return response


# -------------------------------------------------------------------- JSON API


def _phone_of(record_json: dict[str, Any]) -> str | None:
    me = record_json.get("me")
    if not me or not me.get("jid"):
        return None
    return str(me["jid"]).split("@", 1)[0].split(":", 1)[0]


def _dashboard_session(supervisor: Supervisor, record: Any, now: float) -> dict[str, Any]:
    info = supervisor.worker_info(record.id)
    data = session_json(record, info)
    started = info.started_at if info is not None and info.pid is not None else None
    data["uptime_s"] = round(now - started, 1) if started is not None else None
    data["phone"] = _phone_of(data)
    return data


@routes.get("/api/dashboard/info")
async def info(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return envelope(
        {
            "version": __version__,
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
    received, sent = request.app[STATS].totals_since(day_start)
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
    return envelope(items, message=f"{len(items)} session(s)")


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
    stats = request.app[STATS]
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
    return envelope(request.app[STATS].recent_events(session_id, limit))


@routes.get("/api/dashboard/sessions/{session_id}/export")
async def export(request: web.Request) -> web.Response:
    """A JSON download: the session, its transitions, recent events and resource history."""
    session_id = sid = path_session(request)
    supervisor = request.app[SUPERVISOR]
    registry = request.app[REGISTRY]
    stats = request.app[STATS]
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


# --------------------------------------------------------------------- sandbox


class SandboxScanBody(msgspec.Struct, forbid_unknown_fields=True):
    phone: str | None = None
    push_name: str | None = None


def sandbox_phone(session_id: str) -> str:
    """A stable sandbox number per session, so repeated scans reuse the same phone."""
    digits = int(hashlib.sha256(session_id.encode()).hexdigest(), 16) % 10**8
    return f"1999{digits:08d}"


async def _sandbox_call(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any]
) -> tuple[int, Any]:
    try:
        async with http.post(url, json=body) as response:
            try:
                data = await response.json(content_type=None)
            except ValueError:
                data = None
            return response.status, data
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ApiError(p.ErrorCode.SANDBOX_UNREACHABLE, f"cannot reach the sandbox: {exc}") from exc


def _sandbox_error(what: str, status: int, data: Any) -> ApiError:
    message = data.get("message") if isinstance(data, dict) else None
    return ApiError(
        p.ErrorCode.SANDBOX_ERROR, f"sandbox refused to {what} (HTTP {status}): {message or data}"
    )


@routes.post("/api/dashboard/sessions/{session_id}/sandbox-scan")
async def sandbox_scan(request: web.Request) -> web.Response:
    """Pair the session with a simulated phone: create it if needed, then scan the live QR."""
    session_id = path_session(request)
    sandbox = request.app[SETTINGS].sandbox
    if not sandbox:
        raise ApiError(p.ErrorCode.SANDBOX_DISABLED, "the gateway was not started with --sandbox")
    body = await read_json(request, SandboxScanBody, optional=True)
    phone = (body.phone or sandbox_phone(session_id)).strip().lstrip("+")
    if not PHONE_RE.match(phone):
        raise ApiError(p.ErrorCode.VALIDATION_ERROR, "phone must be 5 to 15 digits")
    supervisor = request.app[SUPERVISOR]
    qr = await login.wait_for_qr(supervisor, session_id)
    base = sandbox.rstrip("/")
    timeout = aiohttp.ClientTimeout(total=SANDBOX_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as http:
        push_name = body.push_name or f"Sandbox {session_id}"
        status, data = await _sandbox_call(
            http, f"{base}/sim/phones", {"phone": phone, "push_name": push_name}
        )
        created = status == 201
        if status not in (201, 409):
            raise _sandbox_error("create the phone", status, data)
        status, data = await _sandbox_call(http, f"{base}/sim/phones/{phone}/scan", {"qr": qr.code})
        if status != 200:
            raise _sandbox_error("scan the QR", status, data)
    return envelope(
        {"phone": phone, "phone_created": created, "device": data},
        message=f"QR scanned by sandbox phone +{phone}",
    )
