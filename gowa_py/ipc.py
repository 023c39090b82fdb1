"""ZeroMQ plumbing between the gateway and its workers.

Topology (the gateway binds, workers connect, so a restarted worker simply reconnects):

* commands: gateway ROUTER <-> worker DEALER. The ROUTER is ``ROUTER_MANDATORY`` (a
  request to a worker that is not connected fails at once instead of vanishing). A
  worker can serve several requests at once; replies are matched by id.
* events: gateway SUB <- worker XPUB, topic = session id. A worker buffers its events
  until the XPUB has seen the gateway's subscription, which is what defeats ZeroMQ's
  slow-joiner loss at start-up.

A worker can only speak as itself. Every worker may be compromised (it parses whatever
WhatsApp peers send), and all of them reach the same two sockets, so which session a
message speaks for is decided by credentials, never by what the message or the socket
claims:

* Both gateway sockets are CURVE servers. For each worker process the gateway mints a
  key pair (:meth:`GatewaySockets.admit`) and keeps only the public half; the secret goes
  to that one process through a pipe (``gowa_py.supervisor.process``). The gateway's ZAP
  handler accepts a handshake only with a key it issued and not yet replaced, and gives
  the connection the key's session id as its ``User-Id``; ``ZAP_ENFORCE_DOMAIN`` makes
  libzmq refuse every connection when no handler answers. A handshake also proves the
  worker talks to this gateway: the server key is the only one its sockets trust.
* Every event, hello and reply is checked against that ``User-Id``: an event or hello
  naming another session is dropped (and logged, at most once per 10 s per kind).
* The gateway, not the worker, decides where a session's commands go: each worker gets
  a random routing id with its key, and a session's commands are routed to it only once
  a hello from that routing id, authenticated as that session, has arrived. A reply
  counts only if it comes from the routing id its request went to. ``ROUTER_HANDOVER``
  is off, so a connection can never take over a routing id in use; the ids are random, so
  no worker can claim another's first; and a key allows only a few handshakes, so a
  worker cannot open connections by the thousand to collide with the ids libzmq assigns
  to peers without one.

What the checks cost per message is in docs/benchmarks.md ("The wire's authentication").

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
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from gowa_py import protocol as p
from gowa_py.errors import GowaError

log = logging.getLogger(__name__)

MAX_IPC_PATH = 107
ZAP_DOMAIN = "gowa"
#: CURVE handshakes one worker key may make (a worker makes one per socket).
MAX_HANDSHAKES = 8
#: Seconds between two warnings about refused messages of one kind.
REFUSAL_LOG_INTERVAL = 10.0


class WorkerUnavailable(GowaError):
    """The worker is not connected or did not answer before the deadline."""

    code = p.ErrorCode.SESSION_UNAVAILABLE


class WorkerError(GowaError):
    """The worker answered with an error; its code is the one the worker sent."""

    def __init__(self, code: p.ErrorCode, message: str) -> None:
        super().__init__(message, code=code)


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


def _readable(sock: zmq.Socket[bytes]) -> bool:
    """Whether a message waits (ZeroMQ's descriptor alone does not say: it is edge-triggered)."""
    return bool(cast(int, sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN)


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
        self._fd = sock.fileno()
        self._loop.add_reader(self._fd, self._ready.set)
        self._burst = 0

    def poke(self) -> None:
        """After any other use of the socket (a send): it may have consumed the signal of
        a message that arrived meanwhile, and the descriptor would not wake us for it."""
        if _readable(self._sock):
            self._ready.set()

    async def recv(self) -> list[bytes]:
        return await self._recv(copy=True)

    async def recv_frames(self) -> list[zmq.Frame]:
        """Frames rather than bytes: they carry the connection's ``User-Id``."""
        return await self._recv(copy=False)

    async def _recv(self, copy: bool) -> list[Any]:
        while True:
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK, copy=copy)
            except zmq.Again:
                self._burst = 0
                # ZeroMQ's descriptor is edge-triggered: look again after clearing.
                self._ready.clear()
                if not _readable(self._sock):
                    await self._ready.wait()
                continue
            self._burst += 1
            if self._burst >= self.BURST:
                self._burst = 0
                await asyncio.sleep(0)
            return frames

    def close(self) -> None:
        self._loop.remove_reader(self._fd)


class _Refusals:
    """Counts messages and handshakes refused for speaking as someone else, and warns
    about them at most once per :data:`REFUSAL_LOG_INTERVAL` per kind: a hostile worker
    must not be able to flood the gateway's log. Called from the ZAP thread too."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._last: dict[str, float] = {}

    def __call__(self, kind: str, detail: str) -> None:
        self.counts[kind] += 1
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < REFUSAL_LOG_INTERVAL:
            return
        self._last[kind] = now
        log.warning("refused %s: %s (%d refused so far)", kind, detail, self.counts[kind])


class _Keyring:
    """Which session each worker key speaks for; the ZAP handler's credentials provider.

    Mutated on the event loop, read on the ZAP thread: single dict operations, which the
    GIL keeps atomic.
    """

    def __init__(self, refuse: _Refusals) -> None:
        self._sessions: dict[bytes, str] = {}  # Z85 public key -> session id
        self._keys: dict[str, bytes] = {}  # session id -> its current Z85 public key
        self._handshakes: Counter[bytes] = Counter()
        self._refuse = refuse

    def admit(self, session_id: str) -> bytes:
        """A new key pair for ``session_id``'s next worker, replacing the previous one;
        returns the secret half (Z85), which the gateway does not keep."""
        public, secret = zmq.curve_keypair()
        self.revoke(session_id)
        self._sessions[public] = session_id
        self._keys[session_id] = public
        return secret

    def revoke(self, session_id: str) -> None:
        public = self._keys.pop(session_id, None)
        if public is not None:
            self._sessions.pop(public, None)
            self._handshakes.pop(public, None)

    def session_of(self, public: bytes) -> str:
        return self._sessions.get(public, "")

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP: accept a handshake with a key the gateway issued and has not replaced."""
        session_id = self._sessions.get(key)
        if session_id is None:
            self._refuse("handshake", "a key the gateway did not issue or has replaced")
            return False
        self._handshakes[key] += 1
        if self._handshakes[key] > MAX_HANDSHAKES:
            self._refuse("handshake", f"more than {MAX_HANDSHAKES} connections as {session_id!r}")
            return False
        return True


class _Authenticator(ThreadAuthenticator):
    """pyzmq's ZAP handler (on its own thread, so handshakes never wait for the event
    loop), with the key's session id as the connection's ``User-Id``."""

    def __init__(self, context: zmq.Context[Any], keyring: _Keyring) -> None:
        super().__init__(context, log=logging.getLogger("gowa.ipc.zap"))
        self._keyring = keyring

    def curve_user_id(self, client_public_key: bytes) -> str:
        return self._keyring.session_of(z85.encode(client_public_key))


def _speaker(frame: zmq.Frame) -> str:
    """The session a message's connection authenticated as; "" for none (a connection
    whose key was revoked during its handshake carries no ``User-Id``)."""
    try:
        return str(frame.get("User-Id"))
    except zmq.ZMQError:
        return ""


def _curve_server(sock: zmq.Socket[bytes], secret_key: bytes) -> None:
    sock.curve_server = True
    sock.curve_secretkey = secret_key
    sock.zap_domain = ZAP_DOMAIN.encode()
    # Without it, libzmq accepts any CURVE client when no ZAP handler answers.
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)


def _curve_client(sock: zmq.Socket[bytes], server_key: str, keys: p.WorkerKeys) -> None:
    sock.curve_serverkey = server_key.encode()
    sock.curve_publickey = zmq.curve_public(keys.secret_key)
    sock.curve_secretkey = keys.secret_key


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
        self.refused = _Refusals()
        self._keyring = _Keyring(self.refused)
        public, secret = zmq.curve_keypair()
        #: The gateway's CURVE public key (Z85): the only server a worker trusts.
        self.server_key = public.decode()
        self._auth: _Authenticator | None = None
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
            _curve_server(sock, secret)
        self.command_endpoint = command_endpoint
        self.event_endpoint = event_endpoint
        self._on_event = on_event
        self._on_hello = on_hello
        self._pending: dict[str, tuple[asyncio.Future[p.Reply], bytes]] = {}
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
        self._auth = _Authenticator(self._ctx, self._keyring)
        self._auth.start()
        self._auth.configure_curve_callback(ZAP_DOMAIN, self._keyring)
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
                speaker = _speaker(frames[1])
                if speaker != message.session_id or self._issued.get(speaker) != route:
                    self.refused(
                        "hello", f"worker of {speaker!r} said hello as {message.session_id!r}"
                    )
                    continue
                self._routes[speaker] = route
                # The handler may send requests whose replies this very loop must read.
                task = asyncio.create_task(_guarded(self._on_hello(message), "hello handler"))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)
                continue
            pending = self._pending.get(message.id)
            if pending is None:
                continue
            future, expected = pending
            if route != expected:
                self.refused(
                    "reply", f"worker of {_speaker(frames[1])!r} answered another's request"
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
            speaker = _speaker(frames[1])
            if event.session_id != speaker:
                self.refused(
                    "event", f"worker of {speaker!r} sent an event of {event.session_id!r}"
                )
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

    def __init__(
        self,
        session_id: str,
        command_endpoint: str,
        event_endpoint: str,
        server_key: str,
        keys: p.WorkerKeys,
    ) -> None:
        self.session_id = session_id
        self._topic = session_id.encode()
        self._loop = asyncio.get_running_loop()
        self._ctx = zmq.Context()
        self._dealer = self._ctx.socket(zmq.DEALER)
        self._dealer.setsockopt(zmq.IDENTITY, keys.routing_id)
        self._dealer.setsockopt(zmq.LINGER, 1000)
        self._dealer_lock = threading.Lock()
        self._handle: Callable[[p.Request], None] | None = None
        self._pub = self._ctx.socket(zmq.XPUB)
        self._pub.setsockopt(zmq.LINGER, 2000)
        self._pub.setsockopt(zmq.SNDHWM, 100_000)
        for sock in (self._dealer, self._pub):
            _curve_client(sock, server_key, keys)
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
        self._loop.add_reader(self._dealer.fileno(), self._drain)
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
            pending = _readable(self._dealer)
        if pending:
            self._loop.call_soon_threadsafe(self._drain)

    async def close(self) -> None:
        self._watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watch
        with self._dealer_lock:
            if self._handle is not None:
                self._loop.remove_reader(self._dealer.fileno())
            self._dealer.close()
        with self._pub_lock:
            self._live = False
            self._pub.close()
        self._ctx.term()
