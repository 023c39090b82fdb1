"""Generic GoWA operation routes: request → operation struct → worker → GoWA envelope.

Each route is declared once as an :class:`OpRoute` (in ``user``, ``send``, ...):
method, GoWA path and the ``gowa_py.operations`` struct. The struct is built from the path,
query, JSON body or multipart form, which validates it (400 ``VALIDATION_ERROR`` naming
the field), media given as ``*_url`` is fetched here (413 over its kind's limit), and the
struct travels to the worker unchanged. ``/openapi.json`` reads the same declarations.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import msgspec
from aiohttp import web
from yarl import URL

from gowa_py import operations as ops
from gowa_py import protocol as p
from gowa_py.config import MB, PICTURE_FIELDS
from gowa_py.gateway.bodies import read_fields
from gowa_py.gateway.errors import ApiError, envelope
from gowa_py.gateway.keys import SETTINGS, SUPERVISOR, WEBHOOKS
from gowa_py.webhooks.policy import BlockedTarget, PolicyResolver

Body = Literal["json", "form"] | None
LocalHandler = Callable[[web.Request, str, Any], Awaitable[web.StreamResponse]]
SessionHandler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]

MEDIA_FETCH_TIMEOUT_S = 60
MEDIA_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class OpRoute:
    """One GoWA operation: where it is served and what it takes."""

    method: str
    path: str
    op: type[ops.Op]
    tag: str
    summary: str
    body: Body = None
    media: tuple[str, ...] = ()  # Upload fields that may come as ``<field>_url``
    media_required: bool = True
    timeout: float | None = None
    local: LocalHandler | None = None  # answered by the gateway, without the worker
    responses: dict[int, str] = field(default_factory=dict)


async def request_data(request: web.Request, route: OpRoute) -> dict[str, Any]:
    """Path, query and body merged into one dict (path wins: it names the resource)."""
    data: dict[str, Any] = {k: v for k, v in request.query.items() if k != "device_id"}
    if route.body is not None:
        data.update(await read_fields(request, forms=route.body == "form"))
    data.update({k: v for k, v in request.match_info.items() if k != "session_id"})
    data.pop("op", None)
    return data


def build_operation(route: OpRoute, data: dict[str, Any]) -> ops.Op:
    """Validate; form and query values are strings, so numbers and booleans are coerced."""
    for name in route.media:
        if data.get(name) in ("", None):
            data.pop(name, None)
    try:
        return msgspec.convert(data, route.op, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if "matching regex" in message:  # the JID patterns of gowa_py.operations
            where = message.rpartition(" - at ")[2]
            message = f"{where} is not a phone number or a WhatsApp JID of the right kind"
        raise ApiError(p.ErrorCode.VALIDATION_ERROR, f"invalid request: {message}") from exc


def check_picture(upload: ops.Upload, field_name: str) -> None:
    """A picture field must hold a picture: reading its header is enough to tell, and
    costs nothing (what else was sent reached whatsmeow, which answered 502)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Size is the worker's call (it names the figures); here only the kind matters.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(upload.data)):
                return
    except Image.DecompressionBombError:
        return  # a picture; the worker refuses it for its size, with the figures
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ApiError(
            p.ErrorCode.VALIDATION_ERROR, f"{field_name} is not a picture (JPEG, PNG, WebP, ...)"
        ) from exc


async def fetch_media(request: web.Request, url: str, field_name: str, limit: int) -> ops.Upload:
    """Download ``*_url`` media, refusing anything over ``limit`` bytes (413).

    The gateway fetches on a tenant's behalf, so the webhooks' address policy applies
    (no loopback, private or reserved targets unless allowed) and redirects, which could
    lead there, are not followed.
    """
    if not url.startswith(("http://", "https://")):
        raise ApiError(p.ErrorCode.VALIDATION_ERROR, f"{field_name} must be an http(s) URL")
    policy = request.app[WEBHOOKS].policy
    timeout = aiohttp.ClientTimeout(total=MEDIA_FETCH_TIMEOUT_S)
    try:
        policy.check_literal(URL(url).host or "")
        async with (
            aiohttp.ClientSession(
                timeout=timeout, connector=aiohttp.TCPConnector(resolver=PolicyResolver(policy))
            ) as http,
            http.get(url, allow_redirects=False) as response,
        ):
            if 300 <= response.status < 400:
                raise ApiError(
                    p.ErrorCode.MEDIA_DOWNLOAD_FAILED,
                    f"{field_name}: {url} redirects; give the final URL (redirects are not "
                    "followed)",
                )
            if response.status != 200:
                raise ApiError(
                    p.ErrorCode.MEDIA_DOWNLOAD_FAILED,
                    f"{field_name}: {url} answered HTTP {response.status}",
                )
            if (response.content_length or 0) > limit:
                raise _too_large(field_name, limit)
            chunks, size = [], 0
            async for chunk in response.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > limit:
                    raise _too_large(field_name, limit)
                chunks.append(chunk)
            filename = url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
            return ops.Upload(
                data=b"".join(chunks),
                filename=filename,
                content_type=response.headers.get("Content-Type", "").split(";")[0],
            )
    except BlockedTarget as exc:
        raise ApiError(p.ErrorCode.MEDIA_URL_BLOCKED, f"{field_name}: {exc}") from exc
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ApiError(
            p.ErrorCode.MEDIA_DOWNLOAD_FAILED, f"{field_name}: could not download {url}: {exc}"
        ) from exc


def _too_large(field_name: str, limit: int) -> ApiError:
    return ApiError(
        p.ErrorCode.PAYLOAD_TOO_LARGE,
        f"{field_name} is larger than the {limit / MB:g} MB limit",
    )


async def resolve_media(request: web.Request, route: OpRoute, op: ops.Op) -> ops.Op:
    """Fetch ``*_url`` media and check every file: present, not empty, within its kind's
    limit (GoWA's image, video and file sizes), a picture where one is expected."""
    for name in route.media:
        upload, url = getattr(op, name), getattr(op, f"{name}_url", None)
        limit = request.app[SETTINGS].media_limit(name)
        if upload is None and url:
            upload = await fetch_media(request, url, f"{name}_url", limit)
            op = msgspec.structs.replace(op, **{name: upload})
        elif upload is not None and len(upload.data) > limit:
            raise _too_large(name, limit)
        if upload is None and route.media_required:
            raise ApiError(
                p.ErrorCode.VALIDATION_ERROR, f"{name} (a file) or {name}_url is required"
            )
        if upload is not None and not upload.data:
            raise ApiError(p.ErrorCode.VALIDATION_ERROR, f"{name} is empty")
        if upload is not None and name in PICTURE_FIELDS:
            check_picture(upload, name)
    return op


def render(result: p.Result) -> web.Response:
    if not isinstance(result, p.OperationResult):
        raise ApiError(p.ErrorCode.WORKER_ERROR, "worker answered with an unexpected result")
    if result.content is not None:
        headers = {}
        if result.filename:
            headers["Content-Disposition"] = f'attachment; filename="{result.filename}"'
        return web.Response(
            body=result.content,
            headers=headers,
            content_type=(result.content_type or "application/octet-stream").split(";")[0],
        )
    return envelope(result.results, message=result.message)


async def run(request: web.Request, session_id: str, op: ops.Op, timeout: float | None) -> p.Result:
    """Send one operation to the session's worker; worker error codes become HTTP statuses."""
    return await request.app[SUPERVISOR].command(session_id, p.Operation(input=op), timeout)


def handler(route: OpRoute) -> SessionHandler:
    async def handle(request: web.Request, session_id: str) -> web.StreamResponse:
        op = build_operation(route, await request_data(request, route))
        if route.local is not None:
            return await route.local(request, session_id, op)
        op = await resolve_media(request, route, op)
        timeout = route.timeout or (MEDIA_TIMEOUT_S if route.media else None)
        return render(await run(request, session_id, op, timeout))

    handle.__name__ = f"gowa_{route.op.__name__}"
    handle.__doc__ = route.summary
    return handle
