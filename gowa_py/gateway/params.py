"""Reading the session a route is about from its URL."""

from __future__ import annotations

from aiohttp import web

from gowa_py.gateway.keys import SUPERVISOR
from gowa_py.ids import check_session_id


def path_session(request: web.Request, key: str = "session_id") -> str:
    """The existing session named by ``key`` in the path: 400 for an id that is not valid
    (before anything touches the disk), 404 for one that does not exist."""
    session_id = check_session_id(request.match_info[key])
    request.app[SUPERVISOR].require(session_id)
    return session_id
