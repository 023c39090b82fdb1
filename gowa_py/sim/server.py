"""Wiring of the sandbox: front door, handshake, per-connection loop, dispatch, API.

:class:`SimServer` runs inside any asyncio loop (tests use it in-process);
:func:`run` is the blocking entry point behind ``gowa sim serve``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
from pathlib import Path

import uvloop
from aiohttp import web
from google.protobuf.message import DecodeError

from .api import build_app
from .appstate import register_app_state_routes
from .binary import Node
from .calls import Calls
from .cdn import build_cdn
from .certs import load_ca, load_root_key, tls_server_context
from .connection import Connection
from .contacts import Contacts
from .groupadmin import register_group_admin_routes
from .groups import register_group_routes, route_group_message
from .iq import IqDispatcher, register_basic_routes
from .jid import GROUP_SERVER, JID, SERVER_JID
from .login import login
from .media import DEFAULT_MAX_UPLOAD, MediaStore
from .network import Network, iq_error
from .newsletters import NEWSLETTER_SERVER, register_newsletter_routes, route_newsletter_message
from .noise import HandshakeResult, NoiseError, NoiseResponder
from .paircode import CodePairing
from .pairing import Pairing
from .pictures import register_picture_routes
from .prekeys import handle_count, handle_fetch, handle_upload
from .presence import Presence
from .receipts import handle_ack, handle_receipt
from .routing import handle_message
from .store import Store
from .tokens import tokens_for
from .transport import FrameSocket, FrontDoor, TransportError, WebSocket
from .usync import handle_usync

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 20.0
IGNORED_TAGS = {"ib"}


class SimServer:
    """The sandbox WhatsApp network on one loopback port (proxy + JSON API).

    ``port=0`` picks a free port; :attr:`port` holds the real one after :meth:`start`.
    ``max_upload``: bytes one media upload may have (more is refused with a 413).
    """

    def __init__(
        self,
        data_dir: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        max_upload: int = DEFAULT_MAX_UPLOAD,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.data_dir / "sim.db")
        self.network = Network(self.store, load_root_key(self.data_dir))
        self.pairing = Pairing(self.network)
        self.codes = CodePairing(self.network, self.pairing)
        self.presence = Presence(self.network)
        self.contacts = Contacts(self)
        self.calls = Calls(self.network)
        self.media = MediaStore(self.data_dir / "media", max_upload, max(max_upload * 8, 1 << 30))
        self.iqs = IqDispatcher(self.network)
        register_basic_routes(self.iqs)
        self.iqs.add("usync", "get", "usync", handle_usync)
        self.iqs.add("encrypt", "get", "count", handle_count)
        self.iqs.add("encrypt", "get", "key", handle_fetch)
        self.iqs.add("encrypt", "set", "list", handle_upload)
        self.iqs.add("encrypt", "set", "registration", handle_upload)
        self.iqs.add("md", "set", "remove-companion-device", self._companion_logout)
        self.iqs.add(
            "md", "set", "link_code_companion_reg", self.codes.handle_iq, needs_login=False
        )
        self.iqs.add("w:m", "set", "media_conn", self.media.handle_media_conn)
        register_app_state_routes(self.iqs)
        register_group_routes(self.iqs)
        register_group_admin_routes(self.iqs)
        register_picture_routes(self.iqs)
        register_newsletter_routes(self.iqs)
        self._tasks: set[asyncio.Task] = set()
        self._server: asyncio.AbstractServer | None = None
        self._runner: web.AppRunner | None = None
        self._cdn: web.AppRunner | None = None

    # -- lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ca_pem_path(self) -> Path:
        return self.data_dir / "ca.pem"

    @property
    def ca_pem(self) -> str:
        return self.ca_pem_path.read_text()

    @property
    def root_key(self) -> bytes:
        """The Montgomery root public key that replaces whatsmeow's ``WACertPubKey``."""
        return self.network.root.public

    async def start(self) -> None:
        load_ca(self.data_dir)
        tls = tls_server_context(self.data_dir)
        self._runner = web.AppRunner(build_app(self), handle_signals=False, access_log=None)
        await self._runner.setup()
        self._cdn = web.AppRunner(build_cdn(self.media), handle_signals=False, access_log=None)
        await self._cdn.setup()
        api_server, cdn_server = self._runner.server, self._cdn.server
        assert api_server is not None and cdn_server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: FrontDoor(
                tls, self._serve_tunnel, api_server, self._tasks, media_protocol=cdn_server
            ),
            self.host,
            self.port,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("sandbox listening on %s", self.url)

    async def stop(self) -> None:
        await self.contacts.stop()
        if self._server is not None:
            self._server.close()
        for conn in list(self.network.connections):
            conn.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for runner in (self._runner, self._cdn):
            if runner is not None:
                await runner.cleanup()
        self.store.close()

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- operations used by the API

    def create_phone(self, phone: str, push_name: str) -> None:
        self.store.create_phone(phone, push_name, secrets.token_bytes(32))

    def describe_phone(self, number: str) -> dict:
        phone = self.store.phone(number)
        assert phone is not None
        return {
            "phone": phone.phone,
            "push_name": phone.push_name,
            "lid": str(JID.lid(phone.lid)),
            "devices": [
                {
                    "device": d.device,
                    "jid": str(JID.pn(phone.phone, d.device)),
                    "lid": str(JID.lid(phone.lid, d.device)),
                    "connected": (phone.phone, d.device) in self.network.online,
                    "replaced": self.network.replaced.get((phone.phone, d.device), 0),
                    "app_state_fetched": self.network.app_state_fetches.get(
                        (phone.phone, d.device), []
                    ),
                    "queued": self.store.queued_count(phone.phone, d.device),
                }
                for d in self.store.devices(phone.phone)
            ],
        }

    def drop_connections(self) -> int:
        """Close every client connection at once (fault injection); returns how many."""
        conns = list(self.network.connections)
        for conn in conns:
            conn.abort()
        return len(conns)

    # -- connections

    async def _serve_tunnel(self, ws: WebSocket) -> None:
        frames = FrameSocket(ws)
        result = await self._handshake(frames)
        if result is None:
            await ws.close()
            return
        conn = Connection(
            frames,
            result.reader,
            result.writer,
            result.client_static,
            result.payload,
            self.network.faults,
            tokens_for(result.dict_version),
        )
        self.network.connections.add(conn)
        try:
            if result.payload.HasField("username"):
                login(self.network, conn)
            else:
                self.pairing.begin(conn)
            while (node := await conn.recv()) is not None:
                self._dispatch(conn, node)
        finally:
            self._forget(conn)
            await conn.close()

    async def _handshake(self, frames: FrameSocket) -> HandshakeResult | None:
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                hello = await frames.read_frame()
                if hello is None or frames.header is None:
                    return None
                responder = NoiseResponder(
                    frames.header, self.network.noise_key, self.network.cert_chain
                )
                await frames.send_frame(responder.server_hello(hello))
                finish = await frames.read_frame()
                return responder.client_finish(finish) if finish is not None else None
        except (TimeoutError, NoiseError, TransportError, DecodeError, ConnectionError) as exc:
            log.warning("handshake failed: %s", exc or type(exc).__name__)
            return None

    def _forget(self, conn: Connection) -> None:
        self.network.connections.discard(conn)
        if conn.jid is not None and self.network.online.get((conn.phone, conn.device)) is conn:
            del self.network.online[(conn.phone, conn.device)]
        self.pairing.forget(conn)
        self.codes.forget(conn)
        self.presence.forget(conn)

    def _dispatch(self, conn: Connection, node: Node) -> None:
        try:
            if node.tag == "iq":
                if node.attr("type") in ("result", "error"):
                    self.pairing.handle_reply(conn, node)
                else:
                    self.iqs.dispatch(conn, node)
            elif node.tag in IGNORED_TAGS:
                return
            elif node.tag == "ack":
                handle_ack(self.network, conn, node)
            elif conn.jid is None:
                log.warning("%r sent <%s> before logging in", conn, node.tag)
            elif node.tag == "message":
                to = node.jid_attr("to")
                if to is not None and to.server == GROUP_SERVER:
                    route_group_message(self.network, conn, node)
                elif to is not None and to.server == NEWSLETTER_SERVER:
                    route_newsletter_message(self.network, conn, node)
                else:
                    handle_message(self.network, conn, node)
            elif node.tag == "receipt":
                handle_receipt(self.network, conn, node)
            elif node.tag == "presence":
                self.presence.handle_presence(conn, node)
            elif node.tag == "chatstate":
                self.presence.handle_chatstate(conn, node)
            elif node.tag == "call":
                self.calls.handle_call(conn, node)
            else:
                log.warning("%r: unhandled stanza <%s>", conn, node.tag)
        except Exception:
            log.exception("%r: handler failed for %s", conn, node)
            if node.tag == "iq" and node.attr("type") in ("get", "set"):
                conn.send(iq_error(node, 500, "internal-server-error"))

    def _companion_logout(self, net: Network, conn: Connection, iq: Node) -> None:
        """The companion logs itself out (``client.logout()``): forget the device."""
        net.store.delete_device(conn.phone, conn.device)
        net.online.pop((conn.phone, conn.device), None)
        phone = net.store.phone(conn.phone)
        assert phone is not None
        net.announce_devices(phone)
        conn.send(Node("iq", {"from": SERVER_JID, "type": "result", "id": iq.attr("id")}))


def run(host: str, port: int, data_dir: str, max_upload: int = DEFAULT_MAX_UPLOAD) -> None:
    """Run the sandbox until SIGINT/SIGTERM (the ``gowa sim serve`` command)."""

    async def main() -> None:
        server = SimServer(data_dir, host, port, max_upload)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await server.stop()

    # uvloop: less sandbox CPU per send (docs/benchmarks.md, "Session 5"); the sandbox
    # shares the cores with what it is used to test. Tests run
    # SimServer in-process on asyncio's loop.
    uvloop.run(main())
