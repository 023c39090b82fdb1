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
from gowa_py.ids import InvalidSessionId
from gowa_py.ipc import WorkerError, WorkerUnavailable
from gowa_py.supervisor import (
    PairingLimit,
    SessionBusy,
    SessionExists,
    SessionLimit,
    SessionMissing,
)

log = logging.getLogger("gowa.gateway")


class ApiError(Exception):
    """A failure the gateway answers with; the status is the code's unless given."""

    def __init__(
        self,
        code: p.ErrorCode,
        message: str,
        *,
        status: int | None = None,
        results: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        if not isinstance(code, p.ErrorCode):
            raise TypeError(f"an ApiError's code is an ErrorCode, not {code!r}")
        self.code = code
        self.status = status or self.code.status
        self.message = message
        self.results = results
        self.headers = headers or {}


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


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    E = p.ErrorCode
    try:
        return await handler(request)
    except ApiError as exc:
        response = error_response(exc.code, exc.message, status=exc.status, results=exc.results)
        response.headers.update(exc.headers)
        return response
    except InvalidSessionId as exc:
        return error_response(E.INVALID_SESSION_ID, str(exc))
    except SessionMissing as exc:
        return error_response(E.SESSION_NOT_FOUND, f"session {exc.args[0]!r} does not exist")
    except SessionExists as exc:
        return error_response(E.SESSION_EXISTS, f"session {exc.args[0]!r} already exists")
    except PairingLimit as exc:
        response = error_response(
            E.TOO_MANY_PAIRING,
            f"{exc.args[0]} sessions are already waiting for a QR scan or pairing code "
            f"(max_pairing {exc.args[1]}); try again shortly",
        )
        response.headers["Retry-After"] = "10"
        return response
    except SessionBusy as exc:
        response = error_response(
            E.SESSION_BUSY,
            f"session {exc.args[0]!r} is busy with other start/stop/restart/logout/reconnect "
            f"requests (waited {exc.args[1]:g} s); try again",
        )
        response.headers["Retry-After"] = "1"
        return response
    except SessionLimit as exc:
        return error_response(
            E.SESSION_LIMIT,
            f"this gateway holds {exc.args[0]} sessions, its max_sessions; delete one first",
        )
    except WorkerUnavailable as exc:
        return error_response(E.SESSION_UNAVAILABLE, str(exc))
    except WorkerError as exc:
        return error_response(exc.code, exc.message)
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
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled error on %s %s (ref %s)", request.method, request.path, ref)
        return error_response(
            E.INTERNAL_ERROR, f"internal error; the gateway log has the details (ref {ref})"
        )
