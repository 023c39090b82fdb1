"""The live event stream: ``GET /api/dashboard/events`` (WebSocket, optional ``?session_id=``).

A scoped API key's stream carries only its own sessions' events, and is closed when the
key is revoked. In a cluster the stream carries every node's events (the others' come
through :mod:`gowa_py.cluster.relay`), each with the ``node`` that ran it, filtered alike.

Each event is sent as one JSON object, its :class:`~gowa_py.eventbody.EventBody` (GoWA's
webhook JSON). Every client has its own bounded queue, so a slow browser tab never slows
the gateway or other clients; when its queue is full the oldest events are dropped and
counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec
from aiohttp import WSMsgType, web

from gowa_py import protocol as p
from gowa_py.cluster.relay import RemoteEvent
from gowa_py.eventbody import EventBody, iso_timestamp
from gowa_py.gateway.principal import Principal, principal
from gowa_py.ids import check_session_id
from gowa_py.storage.interfaces import RegistryStorage

log = logging.getLogger("gowa.gateway.eventstream")

QUEUE_SIZE = 10_000
_encoder = msgspec.json.Encoder()
#: Another node's events after which this node reads the session's row again.
_REREAD = frozenset({p.SESSION_STATUS, p.SESSION_DELETED})


class _Client:
    def __init__(self, ws: web.WebSocketResponse, session_id: str | None, who: Principal) -> None:
        self.ws = ws
        self.session_id = session_id
        self.who = who
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_SIZE)
        self.dropped = 0
        self.reported = 0

    def offer(self, data: bytes) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(data)


class EventHub:
    def __init__(self, registry: RegistryStorage, node: str | None = None) -> None:
        self._registry = registry
        #: This node's id in a cluster (each event names its node); None: no cluster.
        self._node = node
        self._clients: set[_Client] = set()

    @property
    def client_count(self) -> int:
        return len(self._clients)

    async def publish(self, body: EventBody) -> None:
        """Supervisor listener: an event of a session this node runs."""
        if not self._clients:
            return
        data = body.encoded if self._node is None else body.stamped(self._node)
        self._offer(body.event.session_id, data)

    async def receive(self, event: RemoteEvent) -> None:
        """An event of a session another node runs. A change of the session's state (or
        its deletion) is read into the registry first, so the session's JSON agrees with
        the event."""
        if event.name in _REREAD:
            self._registry.reload(event.session_id)
        if self._clients:
            self._offer(event.session_id, event.data)

    async def registry_changed(self, what: str) -> None:
        """An admin changed the registry on some node (``key:<id>``, ``session:<id>``;
        gowa_py/registry.py): read it again, and close a revoked key's streams."""
        kind, _, name = what.partition(":")
        if kind == "key" and self._registry.reload_key(name) is None:
            await self.disconnect(f"key:{name}")
        elif kind == "session":
            self._registry.reload(name)

    async def gap(self, since: float, until: float) -> None:
        """The other nodes' events between ``since`` and ``until`` (wall clock) were
        missed: tell every stream, which should read again what it needs (the session's
        history, the webhooks and the event log have everything). The registry
        changes announced meanwhile were missed too: sessions and keys are read again
        now (not at the next renewal round), and a revoked key's streams closed."""
        self._registry.reload()
        revoked = {
            c.who.name
            for c in self._clients
            if c.who.sessions is not None
            and self._registry.get_key(c.who.name.removeprefix("key:")) is None
        }
        for name in revoked:
            await self.disconnect(name)
        for client in self._clients:
            notice = {
                "id": None,
                "event": "stream.gap",
                "session_id": client.session_id,
                "device_id": "",
                "timestamp": iso_timestamp(until),
                "payload": {"since": iso_timestamp(since), "until": iso_timestamp(until)},
                "node": self._node,
            }
            client.offer(_encoder.encode(notice))

    def _offer(self, session_id: str, data: bytes) -> None:
        for client in self._clients:
            if client.session_id in (None, session_id) and self._may_see(client, session_id):
                client.offer(data)

    def _may_see(self, client: _Client, session_id: str) -> bool:
        """The admin sees everything; a scoped key its sessions as the registry has them
        now (a key revoked, or a session taken off it, stops at once)."""
        if client.who.sessions is None:
            return True
        key = self._registry.get_key(client.who.name.removeprefix("key:"))
        return key is not None and session_id in key.sessions

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """The live event stream (WebSocket)."""
        raw = request.query.get("session_id")
        session_id = check_session_id(raw) if raw else None
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        client = _Client(ws, session_id, principal(request))
        self._clients.add(client)
        sender = asyncio.create_task(self._send(client))
        try:
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            self._clients.discard(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return ws

    async def _send(self, client: _Client) -> None:
        while True:
            data = await client.queue.get()
            try:
                if client.dropped > client.reported:
                    # Say so: a consumer that fell behind must know to re-read (the
                    # webhooks and the worker's event log have everything).
                    notice = {
                        "id": None,
                        "event": "stream.dropped",
                        "session_id": client.session_id,
                        "device_id": "",
                        "timestamp": None,
                        "payload": {"dropped": client.dropped},
                    }
                    await client.ws.send_str(_encoder.encode(notice).decode())
                    client.reported = client.dropped
                await client.ws.send_str(data.decode())
            except (ConnectionResetError, RuntimeError):
                return

    async def disconnect(self, name: str) -> None:
        """Close the streams of a principal (a revoked key)."""
        for client in [c for c in self._clients if c.who.name == name]:
            await client.ws.close(code=1008, message=b"credential revoked")

    async def close(self) -> None:
        for client in list(self._clients):
            await client.ws.close(code=1001, message=b"gateway shutting down")
