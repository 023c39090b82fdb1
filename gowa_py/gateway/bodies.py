"""Every request body is read here: one content-type rule, one set of error answers.

JSON routes take ``application/json`` only (UTF-8, the charset JSON allows): a body an HTML
form can send (``text/plain``, urlencoded, multipart) is never read as JSON, so a web page
cannot post one to the gateway without the browser's CORS checks. GoWA's upload routes also
take ``multipart/form-data`` and urlencoded forms, as GoWA does. Malformed bodies of any kind
(bad boundary, nameless part, unknown charset, invalid UTF-8, nesting too deep) answer
``400``; a wrong content type ``415``.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from gowa_py.config import MB
from gowa_py.gateway.errors import ApiError, error_response
from gowa_py.gateway.keys import SETTINGS
from gowa_py.protocol import ErrorCode

T = TypeVar("T")

JSON_TYPE = "application/json"
FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
UTF8 = frozenset({"utf-8", "utf8"})


def has_body(request: web.Request) -> bool:
    return request.can_read_body and request.content_length != 0


def _unsupported(request: web.Request, expected: str) -> ApiError:
    given = request.headers.get("Content-Type", "none")[:100]
    return ApiError(
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        f"the body must be sent as {expected} (e.g. curl --json '{{...}}'); "
        f"got Content-Type {given!r}",
    )


def is_json(request: web.Request) -> bool:
    charset = request.charset
    return request.content_type == JSON_TYPE and (charset is None or charset.lower() in UTF8)


async def _json_bytes(request: web.Request, expected: str = JSON_TYPE) -> bytes | None:
    """The raw JSON body, None if there is none; 415 if it is not sent as JSON, 413 over
    ``max_body_mb`` (the app's own limit is the largest upload's)."""
    if not has_body(request):
        return None
    if not is_json(request):
        raise _unsupported(request, expected)
    limit = int(request.app[SETTINGS].max_body_mb * MB)
    if (request.content_length or 0) > limit:
        raise _json_too_large(limit)
    raw = await request.read()
    if len(raw) > limit:
        raise _json_too_large(limit)
    return raw if raw.strip() else None


def _json_too_large(limit: int) -> ApiError:
    return ApiError(
        ErrorCode.PAYLOAD_TOO_LARGE, f"a JSON body is limited to {limit / MB:g} MB (max_body_mb)"
    )


def _decode(raw: bytes, schema: Any) -> Any:
    try:
        return msgspec.json.decode(raw, type=schema)
    except msgspec.ValidationError as exc:
        raise ApiError(ErrorCode.VALIDATION_ERROR, f"invalid request body: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ApiError(ErrorCode.VALIDATION_ERROR, f"malformed JSON: {exc}") from exc
    except RecursionError as exc:
        raise ApiError(ErrorCode.VALIDATION_ERROR, "malformed JSON: nested too deeply") from exc


async def read_json(request: web.Request, schema: type[T], *, optional: bool = False) -> T:
    """Decode and validate the body; errors name the offending field (``$.config.proxy``)."""
    raw = await _json_bytes(request)
    if raw is None:
        if optional:
            return msgspec.convert({}, schema)
        raise ApiError(ErrorCode.VALIDATION_ERROR, "request body must be a JSON object")
    return _decode(raw, schema)


def _form_value(value: Any) -> Any:
    if isinstance(value, web.FileField):
        return {
            "data": value.file.read(),
            "filename": value.filename or "",
            "content_type": value.content_type or "",
        }
    return value


async def read_fields(request: web.Request, *, forms: bool) -> dict[str, Any]:
    """A JSON object, or (``forms``: GoWA's upload routes) a multipart or urlencoded form,
    as a dict of fields; empty without a body."""
    if forms and has_body(request) and request.content_type in FORM_TYPES:
        try:
            form = await request.post()
        except (ValueError, LookupError, AssertionError) as exc:
            # aiohttp's own messages: "Invalid boundary", "Multipart field missing name.",
            # an unknown charset, bytes that are not in it.
            raise ApiError(ErrorCode.VALIDATION_ERROR, f"malformed form: {exc}"[:500]) from exc
        return {k: _form_value(v) for k, v in form.items()}
    expected = f"{JSON_TYPE} or multipart/form-data" if forms else JSON_TYPE
    raw = await _json_bytes(request, expected)
    if raw is None:
        return {}
    body = _decode(raw, Any)
    if not isinstance(body, dict):
        raise ApiError(ErrorCode.VALIDATION_ERROR, "request body must be a JSON object")
    return body


class BodyTimeout(ApiError):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            ErrorCode.REQUEST_TIMEOUT, f"the request body did not arrive within {seconds:g} s"
        )


def timeout_middleware(seconds: float) -> Any:
    """Cut off a body that is still arriving ``seconds`` after its request started.

    aiohttp waits for a body as long as the client keeps the connection open, so a client
    trickling a byte now and then would hold a connection (and a handler) forever. When the
    time is up the body's stream fails, the handler reading it answers ``408`` and the
    connection is closed; a handler that has its body by then is not affected.
    """

    @web.middleware
    async def limit(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.body_exists:
            return await handler(request)
        stream = request.content
        expired = BodyTimeout(seconds)

        def expire() -> None:
            if not stream.is_eof():
                stream.set_exception(expired)

        timer = asyncio.get_running_loop().call_later(seconds, expire)
        try:
            response = await handler(request)
        except BodyTimeout as exc:
            # The rest of the body is still on its way: the connection cannot be reused.
            response = error_response(exc.code, exc.message, status=exc.status)
            response.force_close()
            await _answer_then_drain(request, response, min(seconds, 1.0))
        finally:
            timer.cancel()
        return response

    return limit


async def _answer_then_drain(
    request: web.Request, response: web.StreamResponse, seconds: float
) -> None:
    """Send ``response`` and end the stream, then keep reading what the client still sends
    until it closes (at most ``seconds``): a socket closed with unread bytes sends a reset,
    which can destroy the answer before the client has read it. Then the connection is
    closed: aiohttp would otherwise read on from the body's stream, which stays failed
    with :class:`BodyTimeout`, and log that as an unhandled exception."""
    await response.prepare(request)
    await response.write_eof()
    transport = request.transport
    if transport is not None and transport.can_write_eof():
        transport.write_eof()
        deadline = asyncio.get_running_loop().time() + seconds
        while not transport.is_closing() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
    request.protocol.force_close()
