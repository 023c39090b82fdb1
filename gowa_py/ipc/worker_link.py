"""A worker's end of the wire: a DEALER for commands and replies, an XPUB for its events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

import msgspec
import zmq

from gowa_py import protocol as p
from gowa_py.ipc.curve import curve_client
from gowa_py.ipc.receiver import Receiver, readable

log = logging.getLogger("gowa_py.ipc")


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
        # Before connecting, so no disconnection goes unseen (see serve).
        self._monitor = self._dealer.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._connection: asyncio.Task[None] | None = None
        self._pub = self._ctx.socket(zmq.XPUB)
        self._pub.setsockopt(zmq.LINGER, 2000)
        self._pub.setsockopt(zmq.SNDHWM, 100_000)
        for sock in (self._dealer, self._pub):
            curve_client(sock, server_key, keys)
        self._dealer.connect(command_endpoint)
        self._pub.connect(event_endpoint)
        self._pub_lock = threading.Lock()
        self._subscribed = asyncio.Event()
        self._live = False  # under _pub_lock: the subscription arrived, publish at once
        self._backlog: list[bytes] = []
        self._watch = asyncio.create_task(self._await_subscription(), name="ipc-subscription")

    async def _await_subscription(self) -> None:
        """Read the XPUB until the gateway subscribes (no other thread touches it yet)."""
        receiver = Receiver(self._pub)
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

    def serve(self, handle: Callable[[p.Request], None], lost: Callable[[], None]) -> None:
        """Call ``handle`` on the event loop for each request, from now until close, and
        ``lost`` once if the command connection drops.

        A dropped connection is not coming back: libzmq drops one for good when it
        cannot allocate a message for it (a worker at its memory ceiling), and a
        reconnection the ROUTER took while the old pipe lingered is ignored (the routing
        id is still in use, and ``ROUTER_HANDOVER`` is off). Without ``lost`` the worker
        would live on unreachable until the gateway's watchdog killed it.
        """
        self._handle = handle
        self._loop.add_reader(self._dealer.fileno(), self._drain)
        self._connection = asyncio.create_task(self._watch_connection(lost), name="ipc-monitor")
        self._drain()

    async def _watch_connection(self, lost: Callable[[], None]) -> None:
        receiver = Receiver(self._monitor)
        try:
            await receiver.recv()  # the one event asked for: DISCONNECTED
        finally:
            receiver.close()
        lost()

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
            except msgspec.DecodeError:  # not MemoryError: the worker's handler ends it
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
            pending = readable(self._dealer)
        if pending:
            self._loop.call_soon_threadsafe(self._drain)

    async def close(self) -> None:
        for task in (self._watch, self._connection):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with self._dealer_lock:
            if self._handle is not None:
                self._loop.remove_reader(self._dealer.fileno())
            # An open monitor socket would keep the context's term() waiting for ever.
            self._dealer.disable_monitor()
            self._monitor.close(0)
            self._dealer.close()
        with self._pub_lock:
            self._live = False
            self._pub.close()
        self._ctx.term()
