"""The HTTP server: aiohttp's runner, with requests it cannot parse answered in our envelope.

aiohttp answers a request its parser refuses (a request line or header over 8190 bytes,
broken syntax) by itself, before any middleware runs: a plain-text 400, and a traceback in
the log for every such request. :class:`EnvelopeHandler` answers these in the JSON envelope
every other error has, and logs one line at debug level (any client can send them).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from gowa_py.gateway.errors import error_response
from gowa_py.protocol import ErrorCode

log = logging.getLogger("gowa.gateway")


class EnvelopeHandler(RequestHandler):
    """aiohttp's connection handler, with its parse-error answer replaced, and a deadline
    for a new connection's first request head.

    aiohttp arms its keep-alive timer on a new connection but ignores it until a first
    response has been sent, so a client that connects and then sends nothing, or its
    headers a byte at a time, held the connection forever. Later requests on a kept-alive
    connection are bounded by that timer; bodies by ``timeout_middleware``.
    """

    __slots__ = ("_head_timer", "head_timeout")
    _head_timer: asyncio.TimerHandle
    head_timeout: float

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._head_timer = self._loop.call_later(self.head_timeout, self._head_expired)

    def _head_expired(self) -> None:
        if self._request_count == 0:  # not one complete request head yet
            log.debug("closed a connection that sent no request in %g s", self.head_timeout)
            self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._head_timer.cancel()
        super().connection_lost(exc)

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError) or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        if isinstance(exc, LineTooLong):
            text = f"the request line or a header is longer than {exc.args[1]} bytes"
        else:
            text = f"malformed HTTP request: {exc.message}"[:300]
        log.debug("refused a request from %s: %s", request.remote, text)
        response = error_response(ErrorCode.BAD_REQUEST, text)
        # The parser cannot resynchronise with what follows on this connection.
        response.force_close()
        return response


class EnvelopeServer(web.Server):
    head_timeout: float

    def __call__(self) -> RequestHandler:
        handler = EnvelopeHandler(self, loop=self._loop, **self._kwargs)
        handler.head_timeout = self.head_timeout
        return handler


class GatewayRunner(web.AppRunner):
    """``web.AppRunner`` whose connections are handled by :class:`EnvelopeHandler`."""

    def __init__(self, app: web.Application, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.head_timeout = head_timeout

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The app builds its Server itself (from its private handler and request factory);
        # EnvelopeServer only changes which handler class each connection gets.
        server.__class__ = EnvelopeServer
        envelope = cast(EnvelopeServer, server)
        envelope.head_timeout = self.head_timeout
        return envelope


async def _serve(
    app: web.Application, host: str, port: int, shutdown_timeout: float, head_timeout: float
) -> None:
    runner = GatewayRunner(app, head_timeout, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await runner.cleanup()


def run(
    app: web.Application,
    host: str,
    port: int,
    shutdown_timeout: float,
    head_timeout: float,
    loop: asyncio.AbstractEventLoop,
) -> None:
    """``web.run_app`` for our runner: serve until SIGINT or SIGTERM, then shut down."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serve(app, host, port, shutdown_timeout, head_timeout))
    finally:
        leftover = asyncio.all_tasks(loop)
        for task in leftover:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
