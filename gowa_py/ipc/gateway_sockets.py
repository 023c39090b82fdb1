"""The gateway's end of the wire: commands out through a ROUTER, events in through a SUB,
each message checked against the session its connection authenticated as."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import zmq

from gowa_py import protocol as p
from gowa_py.ipc.curve import (
    ZAP_DOMAIN,
    Keyring,
    Refusals,
    ZapAuthenticator,
    authenticated_as,
    curve_server,
)
from gowa_py.ipc.errors import WorkerError, WorkerUnavailable
from gowa_py.ipc.receiver import Receiver

log = logging.getLogger("gowa_py.ipc")
_M = TypeVar("_M", p.Hello, p.Event)


class GatewaySockets:
    """The gateway's end: one ROUTER for all commands, one SUB for all events, and the
    ZAP handler that tells which session each connection speaks for."""

    def __init__(
        self,
        command_endpoint: str,
        event_endpoint: str,
        on_event: Callable[[p.Event], Awaitable[None]],
        on_hello: Callable[[p.Hello], Awaitable[None]],
    ) -> None:
        if not zmq.has("curve"):
            raise RuntimeError(
                "the libzmq under pyzmq was built without CURVE, which the gateway needs to "
                "tell its workers apart; install pyzmq's wheel (it bundles one with CURVE)"
            )
        self._ctx = zmq.Context()
        self.refused = Refusals()
        self._keyring = Keyring(self.refused)
        public, secret = zmq.curve_keypair()
        #: The gateway's CURVE public key (Z85): the only server a worker trusts.
        self.server_key = public.decode()
        self._auth: ZapAuthenticator | None = None
        #: The routing id issued with each session's current key, and the ones an
        #: authenticated hello has confirmed (only those receive commands).
        self._issued: dict[str, bytes] = {}
        self._routes: dict[str, bytes] = {}
        self._router = self._ctx.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._router.setsockopt(zmq.LINGER, 0)
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.SUBSCRIBE, b"")
        self._sub.setsockopt(zmq.LINGER, 0)
        self._sub.setsockopt(zmq.RCVHWM, 100_000)
        for sock in (self._router, self._sub):
            curve_server(sock, secret)
        self.command_endpoint = command_endpoint
        self.event_endpoint = event_endpoint
        self._on_event = on_event
        self._on_hello = on_hello
        self._pending: dict[str, tuple[asyncio.Future[p.Reply], bytes]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._replies: Receiver | None = None
        self._events: Receiver | None = None

    def _socket_files(self) -> list[Path]:
        return [
            Path(endpoint.removeprefix("ipc://"))
            for endpoint in (self.command_endpoint, self.event_endpoint)
            if endpoint.startswith("ipc://")
        ]

    def socket_paths(self) -> list[Path]:
        """The socket files (``ipc://`` endpoints) the gateway binds."""
        return self._socket_files()

    def admit(self, session_id: str) -> p.WorkerKeys:
        """Credentials for the next worker of ``session_id``; those of its previous worker
        stop working (new connections with them are refused, commands no longer go there)."""
        secret = self._keyring.admit(session_id)
        routing_id = b"w" + os.urandom(15)  # never a leading zero byte: libzmq's own ids
        self._issued[session_id] = routing_id
        self._routes.pop(session_id, None)
        return p.WorkerKeys(secret_key=secret, routing_id=routing_id)

    def revoke(self, session_id: str) -> None:
        """The session is gone: no connection or command for it any more."""
        self._keyring.revoke(session_id)
        self._issued.pop(session_id, None)
        self._routes.pop(session_id, None)

    async def start(self) -> None:
        for path in self._socket_files():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
        # Before binding: no connection may be made before someone checks its key.
        self._auth = ZapAuthenticator(self._ctx, self._keyring)
        self._auth.start()
        self._auth.configure_curve_callback(ZAP_DOMAIN, self._keyring)
        self._router.bind(self.command_endpoint)
        self._sub.bind(self.event_endpoint)
        self._replies = Receiver(self._router)
        self._events = Receiver(self._sub)
        self._tasks = [
            asyncio.create_task(self._read_replies(), name="ipc-replies"),
            asyncio.create_task(self._read_events(), name="ipc-events"),
        ]

    async def close(self) -> None:
        for task in [*self._tasks, *self._handlers]:
            task.cancel()
        for task in [*self._tasks, *self._handlers]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for future, _route in self._pending.values():
            if not future.done():
                future.set_exception(WorkerUnavailable("gateway is shutting down"))
        for receiver in (self._replies, self._events):
            if receiver is not None:
                receiver.close()
        self._router.close(0)
        self._sub.close(0)
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        self._ctx.term()
        files = self._socket_files()
        for path in files:
            path.unlink(missing_ok=True)
        for folder in {path.parent for path in files}:
            # Only when empty: a stray folder per gateway run piled up in /tmp.
            with contextlib.suppress(OSError):
                folder.rmdir()

    async def request(self, session_id: str, command: p.Command, timeout: float) -> p.Result:
        """Send ``command`` to the worker of ``session_id`` and wait at most ``timeout`` s."""
        route = self._routes.get(session_id)
        if route is None:
            raise WorkerUnavailable(f"worker of session {session_id!r} is not connected")
        request = p.Request(id=uuid.uuid4().hex, deadline=time.time() + timeout, command=command)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[p.Reply] = loop.create_future()
        self._pending[request.id] = (future, route)
        # A timer on the future itself rather than asyncio.wait_for, which wraps it in a
        # second future: the reply then wakes the caller one event-loop turn sooner, and
        # turns are what a busy gateway on shared cores is short of.
        expiry = loop.call_later(timeout, _expire, future)
        try:
            try:
                self._router.send_multipart([route, p.encode(request)], flags=zmq.NOBLOCK)
            except zmq.ZMQError as exc:
                raise WorkerUnavailable(
                    f"worker of session {session_id!r} is not connected"
                ) from exc
            finally:
                assert self._replies is not None
                self._replies.poke()
            try:
                reply = await future
            except TimeoutError as exc:
                raise WorkerUnavailable(
                    f"worker of session {session_id!r} did not answer within {timeout:g} s"
                ) from exc
        finally:
            expiry.cancel()
            self._pending.pop(request.id, None)
        if reply.error is not None:
            raise WorkerError(reply.error.code, reply.error.message)
        if reply.result is None:
            raise WorkerError(p.ErrorCode.WORKER_ERROR, "worker sent an empty reply")
        return reply.result

    async def _read_replies(self) -> None:
        assert self._replies is not None
        while True:
            frames = await self._replies.recv_frames()
            if len(frames) != 2:
                log.warning("dropping malformed command-socket message (%d frames)", len(frames))
                continue
            route = frames[0].bytes
            try:
                message = p.decode_to_gateway(frames[1].buffer)
            except Exception:
                log.warning("dropping undecodable message from worker %r", route[:64])
                continue
            if isinstance(message, p.Hello):
                speaker = authenticated_as(frames[1])
                if speaker != message.session_id or self._issued.get(speaker) != route:
                    self.refused(
                        "hello", f"worker of {speaker!r} said hello as {message.session_id!r}"
                    )
                    continue
                self._routes[speaker] = route
                # The handler may send requests whose replies this very loop must read.
                task = asyncio.create_task(_guarded(self._on_hello, message, "hello handler"))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)
                continue
            pending = self._pending.get(message.id)
            if pending is None:
                continue
            future, expected = pending
            if route != expected:
                self.refused(
                    "reply", f"worker of {authenticated_as(frames[1])!r} answered another's request"
                )
                continue
            if not future.done():
                future.set_result(message)

    async def _read_events(self) -> None:
        assert self._events is not None
        while True:
            frames = await self._events.recv_frames()
            if len(frames) != 2:
                continue
            try:
                event = p.decode_event(frames[1].buffer)
            except Exception:
                log.warning("dropping undecodable event on topic %r", frames[0].bytes[:64])
                continue
            speaker = authenticated_as(frames[1])
            if event.session_id != speaker:
                self.refused(
                    "event", f"worker of {speaker!r} sent an event of {event.session_id!r}"
                )
                continue
            await _guarded(self._on_event, event, "event handler")
            # A backlog is read without waiting (a ready receive does not yield), and the
            # handler writes the registry in the loop's thread: yield between events so
            # that timers (a cluster's lease renewals and fencing) run on time.
            await asyncio.sleep(0)


async def _guarded(handler: Callable[[_M], Awaitable[None]], message: _M, what: str) -> None:
    """A failing handler must not kill the socket reader that serves every session.

    The handler's coroutine is made here, not by the caller: a task cancelled before its
    first step (a gateway closing) then leaves no coroutine that was never awaited.
    """
    try:
        await handler(message)
    except Exception:
        log.exception("%s failed", what)


def _expire(future: asyncio.Future[p.Reply]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())
