"""ZeroMQ plumbing between the gateway and its workers.

Topology (the gateway binds, workers connect, so a restarted worker simply reconnects):

* commands: gateway ROUTER <-> worker DEALER whose identity is the session id. The
  ROUTER is ``ROUTER_MANDATORY`` (a request to a worker that is not connected fails at
  once instead of vanishing) and ``ROUTER_HANDOVER`` (a restarted worker takes over its
  identity). A worker can serve several requests at once; replies are matched by id.
* events: gateway SUB <- worker XPUB, topic = session id. A worker buffers its events
  until the XPUB has seen the gateway's subscription, which is what defeats ZeroMQ's
  slow-joiner loss at start-up.

Endpoints are ``ipc://`` files in a short per-data-dir runtime directory, so socket paths
stay under the kernel's 107-byte limit whatever the data directory is.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import zmq

from gowa_py import protocol as p

log = logging.getLogger(__name__)

MAX_IPC_PATH = 107


class WorkerUnavailable(Exception):
    """The worker is not connected or did not answer before the deadline."""


class WorkerError(Exception):
    """The worker answered with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def runtime_dir(data_dir: str | os.PathLike[str]) -> Path:
    """A short private directory for this data dir's sockets (one per gateway instance);
    the gateway creates it when it binds and removes it when it closes."""
    digest = hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"gowa-{os.getuid()}-{digest}"
    if len(str(path)) + 16 > MAX_IPC_PATH:
        path = Path("/tmp") / f"gowa-{digest}"
    return path


def endpoints(data_dir: str | os.PathLike[str]) -> tuple[str, str]:
    """The (command, event) endpoints of the gateway that owns ``data_dir``."""
    base = runtime_dir(data_dir)
    return f"ipc://{base}/cmd.sock", f"ipc://{base}/evt.sock"


class _Receiver:
    """Reads one socket on the event loop through its raw descriptor.

    pyzmq's asyncio sockets add and remove a reader and chain futures for every message;
    this reads until the socket is empty and only then waits for the descriptor, which
    lowers the gateway's CPU per send (docs/benchmarks.md, "API latency").
    """

    #: Messages read in a row before other tasks get a turn.
    BURST = 64

    def __init__(self, sock: zmq.Socket[bytes]) -> None:
        self._sock = sock
        self._ready = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._fd = sock.getsockopt(zmq.FD)
        self._loop.add_reader(self._fd, self._ready.set)
        self._burst = 0

    def poke(self) -> None:
        """After any other use of the socket (a send): it may have consumed the signal of
        a message that arrived meanwhile, and the descriptor would not wake us for it."""
        if self._sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            self._ready.set()

    async def recv(self) -> list[bytes]:
        while True:
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                self._burst = 0
                # ZeroMQ's descriptor is edge-triggered: look again after clearing.
                self._ready.clear()
                if not self._sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    await self._ready.wait()
                continue
            self._burst += 1
            if self._burst >= self.BURST:
                self._burst = 0
                await asyncio.sleep(0)
            return frames

    def close(self) -> None:
        self._loop.remove_reader(self._fd)


class GatewaySockets:
    """The gateway's end: one ROUTER for all commands, one SUB for all events."""

    def __init__(
        self,
        command_endpoint: str,
        event_endpoint: str,
        on_event: Callable[[p.Event], Awaitable[None]],
        on_hello: Callable[[p.Hello], Awaitable[None]],
    ) -> None:
        self._ctx = zmq.Context()
        self._router = self._ctx.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self._router.setsockopt(zmq.LINGER, 0)
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.SUBSCRIBE, b"")
        self._sub.setsockopt(zmq.LINGER, 0)
        self._sub.setsockopt(zmq.RCVHWM, 100_000)
        self.command_endpoint = command_endpoint
        self.event_endpoint = event_endpoint
        self._on_event = on_event
        self._on_hello = on_hello
        self._pending: dict[str, asyncio.Future[p.Reply]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._replies: _Receiver | None = None
        self._events: _Receiver | None = None

    def _socket_files(self) -> list[Path]:
        return [
            Path(endpoint.removeprefix("ipc://"))
            for endpoint in (self.command_endpoint, self.event_endpoint)
            if endpoint.startswith("ipc://")
        ]

    def socket_paths(self) -> list[Path]:
        """The socket files (``ipc://`` endpoints) the gateway binds."""
        return self._socket_files()

    async def start(self) -> None:
        for path in self._socket_files():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
        self._router.bind(self.command_endpoint)
        self._sub.bind(self.event_endpoint)
        self._replies = _Receiver(self._router)
        self._events = _Receiver(self._sub)
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
        for future in self._pending.values():
            if not future.done():
                future.set_exception(WorkerUnavailable("gateway is shutting down"))
        for receiver in (self._replies, self._events):
            if receiver is not None:
                receiver.close()
        self._router.close(0)
        self._sub.close(0)
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
        request = p.Request(id=uuid.uuid4().hex, deadline=time.time() + timeout, command=command)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[p.Reply] = loop.create_future()
        self._pending[request.id] = future
        # A timer on the future itself rather than asyncio.wait_for, which wraps it in a
        # second future: the reply then wakes the caller one event-loop turn sooner, and
        # turns are what a busy gateway on shared cores is short of.
        expiry = loop.call_later(timeout, _expire, future)
        try:
            try:
                self._router.send_multipart(
                    [session_id.encode(), p.encode(request)], flags=zmq.NOBLOCK
                )
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
            raise WorkerError(p.ERR_INTERNAL, "worker sent an empty reply")
        return reply.result

    async def _read_replies(self) -> None:
        assert self._replies is not None
        while True:
            frames = await self._replies.recv()
            if len(frames) != 2:
                log.warning("dropping malformed command-socket message (%d frames)", len(frames))
                continue
            try:
                message = p.decode_to_gateway(frames[1])
            except Exception:
                log.warning("dropping undecodable message from worker %r", frames[0][:64])
                continue
            if isinstance(message, p.Hello):
                # The handler may send requests whose replies this very loop must read.
                task = asyncio.create_task(_guarded(self._on_hello(message), "hello handler"))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)
                continue
            future = self._pending.get(message.id)
            if future is not None and not future.done():
                future.set_result(message)

    async def _read_events(self) -> None:
        assert self._events is not None
        while True:
            frames = await self._events.recv()
            if len(frames) != 2:
                continue
            try:
                event = p.decode_event(frames[1])
            except Exception:
                log.warning("dropping undecodable event on topic %r", frames[0][:64])
                continue
            await _guarded(self._on_event(event), "event handler")


async def _guarded(awaitable: Awaitable[None], what: str) -> None:
    """A failing handler must not kill the socket reader that serves every session."""
    try:
        await awaitable
    except Exception:
        log.exception("%s failed", what)


def _expire(future: asyncio.Future[p.Reply]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


class WorkerLink:
    """The worker's end: a DEALER for commands and an XPUB for events.

    Both are plain sockets behind locks, not asyncio ones, so the threads that do a
    worker's work use them directly: events are published from whatever thread records
    them (neonize calls back on Go threads), and a command run on a thread is answered
    from that thread. Each saves a wake-up of the event loop (a self-pipe write and a loop
    pass) per event and per reply, a visible part of a worker's CPU per send
    (docs/benchmarks.md, "API latency"). The loop reads
    requests as they arrive and the XPUB until the gateway's subscription arrives.
    """

    def __init__(self, session_id: str, command_endpoint: str, event_endpoint: str) -> None:
        self.session_id = session_id
        self._topic = session_id.encode()
        self._loop = asyncio.get_running_loop()
        self._ctx = zmq.Context()
        self._dealer = self._ctx.socket(zmq.DEALER)
        self._dealer.setsockopt(zmq.IDENTITY, self._topic)
        self._dealer.setsockopt(zmq.LINGER, 1000)
        self._dealer_lock = threading.Lock()
        self._handle: Callable[[p.Request], None] | None = None
        self._pub = self._ctx.socket(zmq.XPUB)
        self._pub.setsockopt(zmq.LINGER, 2000)
        self._pub.setsockopt(zmq.SNDHWM, 100_000)
        self._dealer.connect(command_endpoint)
        self._pub.connect(event_endpoint)
        self._pub_lock = threading.Lock()
        self._subscribed = asyncio.Event()
        self._live = False  # under _pub_lock: the subscription arrived, publish at once
        self._backlog: list[bytes] = []
        self._watch = asyncio.create_task(self._await_subscription(), name="ipc-subscription")

    async def _await_subscription(self) -> None:
        """Read the XPUB until the gateway subscribes (no other thread touches it yet)."""
        receiver = _Receiver(self._pub)
        try:
            while (await receiver.recv())[0][:1] != b"\x01":
                pass
        finally:
            receiver.close()
        with self._pub_lock:
            backlog, self._backlog = self._backlog, []
            dropped = sum(not self._send(payload) for payload in backlog)
            self._live = True
        if dropped:
            log.warning("event queue to the gateway is full; %d dropped (durable copies)", dropped)
        self._subscribed.set()

    async def wait_subscribed(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def publish(self, event: p.Event) -> None:
        """Send ``event`` to the gateway, or keep it until the subscription arrives.

        Thread-safe; events leave in the order of the calls.
        """
        payload = p.encode(event)
        with self._pub_lock:
            if not self._live:
                if not self._pub.closed:
                    self._backlog.append(payload)
                return
            sent = self._send(payload)
        # Logged outside the lock: the worker forwards its log records as events.
        if not sent:
            log.warning(
                "event queue to the gateway is full; %s dropped (durable copy kept)", event.name
            )

    def _send(self, payload: bytes) -> bool:
        try:
            self._pub.send_multipart([self._topic, payload], flags=zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def hello(
        self, pid: int, started_at: float, event_log: p.EventLogIdentity | None = None
    ) -> None:
        message = p.Hello(
            session_id=self.session_id, pid=pid, started_at=started_at, event_log=event_log
        )
        with self._dealer_lock:
            self._dealer.send(p.encode(message))

    def serve(self, handle: Callable[[p.Request], None]) -> None:
        """Call ``handle`` on the event loop for each request, from now until close."""
        self._handle = handle
        self._loop.add_reader(self._dealer.getsockopt(zmq.FD), self._drain)
        self._drain()

    def _drain(self) -> None:
        """Take every request that has arrived (ZeroMQ's descriptor is edge-triggered)."""
        frames: list[bytes] = []
        with self._dealer_lock:
            if self._dealer.closed:
                return
            while True:
                try:
                    frames.append(self._dealer.recv(zmq.NOBLOCK))
                except zmq.Again:
                    break
        assert self._handle is not None
        for data in frames:
            try:
                request = p.decode_request(data)
            except Exception:
                log.warning("ignoring undecodable request (%d bytes)", len(data))
                continue
            self._handle(request)

    def reply(self, reply: p.Reply) -> None:
        """Answer a request; thread-safe."""
        payload = p.encode(reply)
        with self._dealer_lock:
            if self._dealer.closed:
                return
            try:
                self._dealer.send(payload, zmq.NOBLOCK)
            except zmq.Again:
                log.warning("command queue to the gateway is full; reply %s dropped", reply.id)
            # Sending may have consumed the descriptor's signal of a request that arrived
            # meanwhile; the loop would not wake for it.
            pending = self._dealer.getsockopt(zmq.EVENTS) & zmq.POLLIN
        if pending:
            self._loop.call_soon_threadsafe(self._drain)

    async def close(self) -> None:
        self._watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watch
        with self._dealer_lock:
            if self._handle is not None:
                self._loop.remove_reader(self._dealer.getsockopt(zmq.FD))
            self._dealer.close()
        with self._pub_lock:
            self._live = False
            self._pub.close()
        self._ctx.term()
