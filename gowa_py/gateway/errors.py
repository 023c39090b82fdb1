"""GoWA's response envelope, our error codes, and the middleware that turns every failure
into a JSON answer (never a traceback, never an HTML error page)."""

from __future__ import annotations

import errno
import logging
import sqlite3
import uuid
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gowa_py import protocol as p
from gowa_py.errors import GowaError
from gowa_py.storage import postgres

log = logging.getLogger("gowa.gateway")


class ApiError(GowaError):
    """A failure the gateway answers a request with; the status is the code's unless given."""

    def __init__(
        self,
        code: p.ErrorCode,
        message: str,
        *,
        status: int | None = None,
        results: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status, results=results, headers=headers)


_encoder = msgspec.json.Encoder()


def envelope(
    results: Any = None, message: str = "Success", code: str = "SUCCESS", status: int = 200
) -> web.Response:
    body = {"code": code, "message": message, "results": results}
    return web.Response(body=_encoder.encode(body), status=status, content_type="application/json")


def error_response(
    code: p.ErrorCode, message: str, *, status: int | None = None, results: Any = None
) -> web.Response:
    """The error envelope of ``code``, answered with its status unless ``status`` is given."""
    return envelope(results, message=message, code=code, status=status or code.status)


def disk_full(exc: BaseException) -> bool:
    """Whether a failure (or what caused it) is a full disk or an exhausted quota."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(seen, sqlite3.Error) and getattr(seen, "sqlite_errorcode", None) == (
            sqlite3.SQLITE_FULL
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _client_gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


def _answer(exc: GowaError) -> web.Response:
    response = error_response(exc.code, exc.message, status=exc.status, results=exc.results)
    response.headers.update(exc.headers)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    E = p.ErrorCode
    try:
        return await handler(request)
    except GowaError as exc:
        if exc.code is not E.INTERNAL_ERROR:
            return _answer(exc)
        failure: Exception = exc
    except HttpProcessingError as exc:  # a malformed body part (multipart headers, ...)
        status = exc.code if 400 <= exc.code < 500 else 400
        code = E.for_status(status)
        if code is E.HTTP_ERROR:
            code = E.BAD_REQUEST
        return error_response(code, exc.message[:500], status=status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = E.for_status(exc.status)
        response = error_response(code, exc.reason or code, status=exc.status)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in exc.headers:
                response.headers[header] = exc.headers[header]
        return response
    except Exception as exc:
        failure = exc
    return _unexpected(request, failure)


def _unexpected(request: web.Request, exc: Exception) -> web.Response:
    """A failure without a code of its own: a gone client, a full disk, or a gateway bug."""
    E = p.ErrorCode
    if isinstance(exc, ConnectionResetError) and _client_gone(request):
        # The client went away mid-request (its body cut short): nobody to answer and
        # nothing wrong on our side, so no traceback.
        log.debug("client left during %s %s", request.method, request.path)
        return error_response(E.CLIENT_DISCONNECTED, "the client closed the connection")
    if disk_full(exc):
        log.error("%s %s: the data dir's disk is full (%s)", request.method, request.path, exc)
        return error_response(
            E.INSUFFICIENT_STORAGE,
            "the gateway's disk is full; nothing was changed (free space and retry)",
        )
    if postgres.unavailable(exc):
        log.error("%s %s: PostgreSQL does not answer (%s)", request.method, request.path, exc)
        return error_response(
            E.DATABASE_UNAVAILABLE, "the gateway's database does not answer; retry later"
        )
    ref = uuid.uuid4().hex[:12]
    log.error("unhandled error on %s %s (ref %s)", request.method, request.path, ref, exc_info=exc)
    return error_response(
        E.INTERNAL_ERROR, f"internal error; the gateway log has the details (ref {ref})"
    )
