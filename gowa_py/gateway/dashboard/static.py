"""The dashboard's page and the files it loads, served from the package or the source tree.

The page (``dashboard/`` at the repository root) is plain ES modules; its one library,
uPlot, comes from npm into ``dashboard/node_modules`` (``make dashboard-deps``) and is
served from here, so the dashboard works with no internet. Only files named in
:data:`VENDOR_FILES` or living in ``dashboard/app`` (and its :data:`APP_FOLDERS`) are
reachable, never the rest of ``node_modules``.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from gowa_py import protocol as p
from gowa_py.gateway import assets
from gowa_py.gateway.errors import ApiError

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
routes = web.RouteTableDef()


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
