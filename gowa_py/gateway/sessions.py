"""Session management: ``/api/sessions[/{session_id}[/start|stop|restart|logout]]``."""

from __future__ import annotations

import logging

from aiohttp import web

from gowa_py import protocol as p
from gowa_py.gateway.bodies import read_json
from gowa_py.gateway.errors import envelope
from gowa_py.gateway.keys import SESSION_VIEWS, SUPERVISOR
from gowa_py.gateway.views import deleted_message
from gowa_py.gateway.webhooks import check_targets
from gowa_py.ids import check_session_id
from gowa_py.ipc import WorkerError, WorkerUnavailable
from gowa_py.models import CreateSession, PatchSession, SessionConfig

log = logging.getLogger("gowa.gateway.sessions")

routes = web.RouteTableDef()


def _session_response(
    request: web.Request, session_id: str, message: str, status: int = 200
) -> web.Response:
    supervisor = request.app[SUPERVISOR]
    record = supervisor.require(session_id)
    view = request.app[SESSION_VIEWS].one(
        record, supervisor.worker_info(session_id), supervisor.node_of(session_id)
    )
    return envelope(view, message=message, status=status)


def _id(request: web.Request) -> str:
    return check_session_id(request.match_info["session_id"])


@routes.post("/api/sessions")
async def create_session(request: web.Request) -> web.Response:
    body = await read_json(request, CreateSession)
    config = body.config.keeping_secrets(SessionConfig())
    await check_targets(request.app, config)
    supervisor = request.app[SUPERVISOR]
    await supervisor.create(body.session_id, config, body.start)
    return _session_response(request, body.session_id, "Session created", status=201)


@routes.get("/api/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    supervisor = request.app[SUPERVISOR]
    records = supervisor.list()
    views = request.app[SESSION_VIEWS].many(records, supervisor.workers(), supervisor.nodes())
    return envelope(views, message=f"{len(records)} session(s)")


@routes.get("/api/sessions/{session_id}")
async def get_session(request: web.Request) -> web.Response:
    return _session_response(request, _id(request), "Session")


@routes.patch("/api/sessions/{session_id}")
async def patch_session(request: web.Request) -> web.Response:
    session_id = _id(request)
    supervisor = request.app[SUPERVISOR]
    record = supervisor.require(session_id)
    body = await read_json(request, PatchSession)
    config = body.config.apply(record.config).keeping_secrets(record.config)
    await check_targets(request.app, config, record.config)
    supervisor.update_config(session_id, config)
    await push_session_settings(request, session_id, restart=config.proxy != record.config.proxy)
    return _session_response(request, session_id, "Session updated")


async def push_session_settings(request: web.Request, session_id: str, restart: bool) -> None:
    """Make a PATCHed config take effect on a running worker.

    A new proxy needs a new connection, so the session restarts; every other setting
    (auto-reply, auto-read, auto-download, call reject, presence, retention) is pushed
    live with an ``ApplySettings`` operation. A stopped session reads the saved config
    when it starts, so there is nothing to push.
    """
    supervisor = request.app[SUPERVISOR]
    if not supervisor.is_running(session_id):
        return
    if restart:
        await supervisor.restart_session(session_id)
        return
    settings = supervisor.require(session_id).config.worker_settings()
    try:
        await supervisor.command(session_id, p.Operation(input=settings), 5.0)
    except (WorkerError, WorkerUnavailable) as exc:
        log.warning("session %s: settings saved but not pushed live: %s", session_id, exc)


@routes.delete("/api/sessions/{session_id}")
async def delete_session(request: web.Request) -> web.Response:
    session_id = _id(request)
    unlinked = await request.app[SUPERVISOR].delete_session(session_id)
    return envelope({"id": session_id, "unlinked": unlinked}, message=deleted_message(unlinked))


@routes.post("/api/sessions/{session_id}/start")
async def start_session(request: web.Request) -> web.Response:
    session_id = _id(request)
    await request.app[SUPERVISOR].start_session(session_id)
    return _session_response(request, session_id, "Session starting")


@routes.post("/api/sessions/{session_id}/stop")
async def stop_session(request: web.Request) -> web.Response:
    session_id = _id(request)
    await request.app[SUPERVISOR].stop_session(session_id)
    return _session_response(request, session_id, "Session stopped")


@routes.post("/api/sessions/{session_id}/restart")
async def restart_session(request: web.Request) -> web.Response:
    session_id = _id(request)
    await request.app[SUPERVISOR].restart_session(session_id)
    return _session_response(request, session_id, "Session restarting")


@routes.post("/api/sessions/{session_id}/logout")
async def logout_session(request: web.Request) -> web.Response:
    session_id = _id(request)
    await request.app[SUPERVISOR].logout(session_id)
    return _session_response(request, session_id, "Session logged out")
