"""Every node's session events on every node's event stream, through PostgreSQL.

A node runs only its own sessions' workers, so only their events reach its listeners.
This relay sends each of them to the other nodes with ``NOTIFY`` on one channel and
hands the ones the others send to the node's live stream: no broker beside the
database the cluster already shares. An event travels as the JSON the event stream
sends, with the ``node`` that ran it; one of 8000 bytes or more (NOTIFY's limit: a
large message's text, a QR code with its image) is written to the table ``event_relay``
and NOTIFY carries its row's id, read by each listener and deleted a minute later.

Each node keeps two connections: one LISTENs (a connection in session mode: NOTIFY
reaches the backend that ran LISTEN), one sends and reads the stored events. A
listener whose connection dropped (the server restarted, the backend was terminated)
connects again and listens anew; what the other nodes sent meanwhile is not replayed
(this is the live stream, and the event log and the webhooks keep every event): the
node is told the span it missed instead, for its streams to say so.

The listening connection also hears ``REGISTRY_CHANNEL``: what an admin changed in the
registry on some node (a scoped key revoked, a session's config), handed to ``changed``
for this node to read it again at once (gowa_py/registry.py). Those missed while the
listener was down are read when it listens again (``gap`` reads the registry again), and
at every renewal round anyway (gowa_py/cluster/node.py).

Webhooks do not go through here: the node that runs a session delivers them, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import psycopg

from gowa_py.backoff import backoff_delay
from gowa_py.eventbody import EventBody
from gowa_py.storage import postgres

log = logging.getLogger("gowa.cluster.relay")

CHANNEL = "gowa_events"
#: NOTIFY refuses a payload of 8000 bytes or more (with PostgreSQL's default page size).
NOTIFY_LIMIT = 8000
#: How long a stored event waits for the listeners to read it.
KEEP_S = 60.0
#: Events waiting to be sent; the oldest go when the database is away for long.
QUEUE_SIZE = 10_000
#: The most events sent in one transaction.
BATCH = 500
#: Ids of the events received lately: one sent twice (the sender retried a batch whose
#: commit it did not see) is handed on once.
SEEN = 20_000
#: Seconds without a notification after which the listener checks its connection.
IDLE_CHECK_S = 30.0

_TABLE = f"{postgres.quoted(postgres.REGISTRY_SCHEMA)}.event_relay"
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class RemoteEvent:
    """An event another node ran, as its event stream sends it (``data``, the JSON)."""

    id: str
    node: str
    session_id: str
    name: str
    data: bytes


class _Head(msgspec.Struct):
    """What the relay reads of a notification: an event, or a stored one's row."""

    node: str = ""
    id: str = ""
    session_id: str = ""
    event: str = ""
    ref: int = 0


_decode_head = msgspec.json.Decoder(_Head).decode


def fits(data: bytes) -> bool:
    """Whether the JSON goes as a NOTIFY payload itself (else it is stored)."""
    return len(data) < NOTIFY_LIMIT


def reference(node: str) -> bytes:
    """The start of a stored event's notification; the row's id and ``}`` complete it."""
    return b'{"node":' + _encoder.encode(node) + b',"ref":'


def read(payload: bytes) -> tuple[str, int, RemoteEvent | None]:
    """A notification: its node, the row of a stored event (0: none), else the event."""
    head = _decode_head(payload)
    if head.ref:
        return head.node, head.ref, None
    return head.node, 0, RemoteEvent(head.id, head.node, head.session_id, head.event, payload)


class EventRelay:
    """This node's events out to the other nodes, and theirs in to ``deliver``."""

    def __init__(
        self,
        url: str,
        node: str,
        deliver: Callable[[RemoteEvent], Awaitable[None]],
        gap: Callable[[float, float], Awaitable[None]],
        changed: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        """``deliver`` gets each event of another node; ``gap`` the wall-clock times
        between which the other nodes' events were missed (the listening connection was
        down), once it listens again; ``changed`` each registry change announced."""
        self.url = url
        self.node = node
        self._deliver = deliver
        self._gap = gap
        self._changed = changed
        self._queue: deque[bytes] = deque(maxlen=QUEUE_SIZE)
        self._wake = asyncio.Event()
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._conn_lock = asyncio.Lock()
        self._seen: set[str] = set()
        self._seen_order: deque[str] = deque()
        self._tasks: list[asyncio.Task[None]] = []
        #: When this node last stored an event, and last deleted old ones (monotonic).
        self._stored_at: float | None = None
        self._pruned = 0.0
        #: Events not sent: the queue was full (the database away for long).
        self.lost = 0
        #: Times the listener connected (1 once it listens; more after reconnections).
        self.listens = 0

    async def on_event(self, body: EventBody) -> None:
        """Supervisor listener: send the event to the other nodes (soon, in a batch)."""
        if len(self._queue) == QUEUE_SIZE:
            if self.lost % QUEUE_SIZE == 0:
                log.warning(
                    "%d events waiting for the other nodes: dropping the oldest from their "
                    "streams (%d so far)",
                    QUEUE_SIZE,
                    self.lost + 1,
                )
            self.lost += 1
        self._queue.append(body.stamped(self.node))
        self._wake.set()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._sending(), name="relay-send"),
            asyncio.create_task(self._listening(), name="relay-listen"),
        ]

    async def close(self, drain: float = 1.0) -> None:
        """Stop listening; send what is queued for up to ``drain`` seconds."""
        if not self._tasks:
            return
        sender, *others = self._tasks
        for task in others:
            task.cancel()
        deadline = time.monotonic() + drain
        while self._queue and time.monotonic() < deadline and not sender.done():
            await asyncio.sleep(0.02)
        sender.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._conn is not None:
            await self._conn.close()

    async def _connect(self, role: str) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self.url,
            autocommit=True,
            application_name=f"gowa-events-{role} {self.node}",
            connect_timeout=5,
            # A server gone silent (a cut cable) is noticed within a minute or so.
            keepalives=1,
            keepalives_idle=15,
            keepalives_interval=5,
            keepalives_count=3,
        )

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await self._connect("send")
        return self._conn

    # ------------------------------------------------------------------ sending

    async def _sending(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), KEEP_S / 2)
            if self._queue:
                await self._send_batch()
            if self._prune_due():
                try:
                    await self._prune()
                except psycopg.Error as exc:
                    log.warning("deleting old stored events failed: %s", exc)

    async def _send_batch(self) -> None:
        """Send the oldest queued events, trying again until the database takes them."""
        failures = 0
        batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
        while True:
            try:
                await self._send(batch)
                return
            except psycopg.OperationalError as exc:
                delay = backoff_delay(failures, base=0.5, cap=10.0)
                failures += 1
                log.warning("sending events to the other nodes failed, retrying: %s", exc)
                await asyncio.sleep(delay)
            except psycopg.Error:
                log.exception("the other nodes could not be sent %d events", len(batch))
                return

    async def _send(self, batch: list[bytes]) -> None:
        async with self._conn_lock:
            conn = await self._connection()
            async with conn.transaction(), conn.pipeline():
                for data in batch:
                    if fits(data):
                        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, data.decode()))
                    else:
                        self._stored_at = time.monotonic()
                        await conn.execute(
                            f"WITH r AS (INSERT INTO {_TABLE} (body) VALUES (%s) RETURNING id) "
                            "SELECT pg_notify(%s, %s || r.id || '}') FROM r",
                            (data.decode(), CHANNEL, reference(self.node).decode()),
                        )

    def _prune_due(self) -> bool:
        """Whether rows this node stored may be left over (no deletion ran a whole
        ``KEEP_S`` after the last), and the last deletion is half that old."""
        if self._stored_at is None:
            return False
        now = time.monotonic()
        return self._pruned <= self._stored_at + KEEP_S + 1 and now - self._pruned >= KEEP_S / 2

    async def _prune(self) -> None:
        """Delete the stored events older than ``KEEP_S`` (every node's)."""
        self._pruned = time.monotonic()
        async with self._conn_lock:
            conn = await self._connection()
            await conn.execute(
                f"DELETE FROM {_TABLE} WHERE at < now() - make_interval(secs => %s)", (KEEP_S,)
            )

    # ---------------------------------------------------------------- listening

    async def _listening(self) -> None:
        failures = 0
        #: When the listening connection dropped (wall clock), until it listens again.
        dropped: float | None = None
        while True:
            try:
                conn = await self._connect("listen")
            except psycopg.OperationalError as exc:
                delay = backoff_delay(failures, base=0.5, cap=10.0)
                failures += 1
                log.warning("listening to the other nodes' events: %s; retrying", exc)
                await asyncio.sleep(delay)
                continue
            try:
                await conn.execute(f"LISTEN {CHANNEL}")
                if self._changed is not None:
                    await conn.execute(f"LISTEN {postgres.REGISTRY_CHANNEL}")
                self.listens += 1
                failures = 0
                log.info("listening to the other nodes' events")
                if dropped is not None:
                    await self._gap(dropped, time.time())
                    dropped = None
                while True:
                    async for notify in conn.notifies(timeout=IDLE_CHECK_S):
                        if notify.channel == postgres.REGISTRY_CHANNEL:
                            await self._registry_changed(notify.payload)
                        else:
                            await self._receive(notify.payload.encode())
                    await conn.execute("SELECT 1")  # quiet: is the connection alive?
            except psycopg.Error as exc:
                log.warning(
                    "the connection listening to the other nodes' events dropped (%s): "
                    "their events until it is back are not shown",
                    exc,
                )
                if dropped is None and self.listens:
                    dropped = time.time()
            finally:
                await conn.close()

    async def _receive(self, payload: bytes) -> None:
        try:
            node, ref, event = read(payload)
            if node == self.node:
                return
            if event is None:
                event = await self._stored(ref)
            if event is None or not self._first(event.id):
                return
            await self._deliver(event)
        except psycopg.OperationalError as exc:
            log.warning("reading an event another node stored failed: %s", exc)
        except Exception:
            log.exception("a notification of another node's event could not be handled")

    async def _registry_changed(self, what: str) -> None:
        assert self._changed is not None
        try:
            await self._changed(what)
        except Exception:
            log.exception("a registry change (%s) could not be read again", what[:80])

    async def _stored(self, ref: int) -> RemoteEvent | None:
        async with self._conn_lock:
            conn = await self._connection()
            cursor = await conn.execute(f"SELECT body FROM {_TABLE} WHERE id = %s", (ref,))
            row = await cursor.fetchone()
        if row is None:
            log.warning("another node's stored event %d is gone already", ref)
            return None
        _, _, event = read(row[0].encode())
        return event

    def _first(self, event_id: str) -> bool:
        """Whether the event is not one received already (remembers it)."""
        if not event_id:
            return True
        if event_id in self._seen:
            return False
        self._seen.add(event_id)
        self._seen_order.append(event_id)
        if len(self._seen_order) > SEEN:
            self._seen.discard(self._seen_order.popleft())
        return True
