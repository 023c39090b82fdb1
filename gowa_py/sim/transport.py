"""The sandbox's front door: one TCP port for the HTTP CONNECT proxy and the JSON API.

whatsmeow dials ``wss://web.whatsapp.com/ws/chat`` through the configured HTTP proxy. The
sandbox *is* that proxy: it answers ``CONNECT web.whatsapp.com:443``, terminates the TLS
itself with a certificate from its own CA, and speaks the websocket server side over the
decrypted stream. ``CONNECT mmg.whatsapp.net:443``, the media CDN, gets the same TLS
and then the CDN's aiohttp application (:mod:`.cdn`). Any other request line
(``GET /sim/...``) is handed to the aiohttp request handler on the same connection.

The websocket layer is minimal on purpose: binary messages only (whatsmeow ignores
text), no extensions (``permessage-deflate`` is declined), pings answered, close frames
echoed. On top of it, :class:`FrameSocket` implements WhatsApp's framing: a 4-byte
connection header from the client, then ``len24 || payload`` frames in both directions.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import ssl
import struct
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

log = logging.getLogger(__name__)

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_PATH = "/ws/chat"
ALLOWED_TARGETS = {"web.whatsapp.com:443"}
#: The media CDN: its tunnels carry HTTPS requests, served by ``media_protocol``.
MEDIA_TARGETS = {"mmg.whatsapp.net:443"}
MAX_HEADER_BYTES = 16384
MAX_MESSAGE_BYTES = 1 << 24
FRAME_MAX = (1 << 24) - 1
#: Seconds a client gets from TCP connect to an accepted websocket.
SETUP_TIMEOUT = 20.0

_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0, 1, 2, 8, 9, 10


class TransportError(Exception):
    """The peer broke the HTTP, websocket or framing rules."""


class WebSocket:
    """Server side of RFC 6455 over an (already TLS-wrapped) asyncio stream pair."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed or self._writer.is_closing()

    async def accept(self) -> None:
        """Read the upgrade request and answer ``101 Switching Protocols``."""
        raw = await self._reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        if len(parts) != 3 or parts[0] != "GET" or parts[1] != WS_PATH:
            await self._reject(404, "Not Found")
            raise TransportError(f"unexpected websocket request {lines[0]!r}")
        key = headers.get("sec-websocket-key", "")
        if headers.get("upgrade", "").lower() != "websocket" or not key:
            await self._reject(400, "Bad Request")
            raise TransportError("not a websocket upgrade")
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        self._writer.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        await self._writer.drain()

    async def _reject(self, status: int, reason: str) -> None:
        self._writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n\r\n".encode())
        await self._writer.drain()

    def _write_frame(self, opcode: int, payload: bytes) -> None:
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, length)
        elif length < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
        self._writer.write(header + payload)

    async def send(self, payload: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("websocket closed")
        self._write_frame(_OP_BINARY, payload)
        await self._writer.drain()

    async def _read_frame(self) -> tuple[bool, int, bytes]:
        head = await self._reader.readexactly(2)
        fin, opcode = bool(head[0] & 0x80), head[0] & 0x0F
        length = head[1] & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self._reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self._reader.readexactly(8))
        if length > MAX_MESSAGE_BYTES:
            raise TransportError(f"websocket frame of {length} bytes")
        mask = await self._reader.readexactly(4) if head[1] & 0x80 else None
        data = await self._reader.readexactly(length)
        if mask:
            unmasked = int.from_bytes(data, "big") ^ int.from_bytes(
                (mask * (length // 4 + 1))[:length], "big"
            )
            data = unmasked.to_bytes(length, "big")
        return fin, opcode, data

    async def recv(self) -> bytes | None:
        """Next binary message, or ``None`` once the peer closed the connection."""
        message = bytearray()
        opcode = None
        try:
            while True:
                fin, op, data = await self._read_frame()
                if op == _OP_CLOSE:
                    if not self.closed:
                        self._write_frame(_OP_CLOSE, data[:2])
                        self._closed = True
                    return None
                if op == _OP_PING:
                    self._write_frame(_OP_PONG, data)
                    continue
                if op == _OP_PONG:
                    continue
                if op != _OP_CONT:
                    opcode = op
                message += data
                if len(message) > MAX_MESSAGE_BYTES:
                    raise TransportError("websocket message too large")
                if fin:
                    if opcode == _OP_BINARY:
                        return bytes(message)
                    log.warning("ignoring websocket message with opcode %s", opcode)
                    message.clear()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            self._closed = True
            return None

    async def close(self, code: int = 1000) -> None:
        """Send a close frame (once) and shut the stream down."""
        if not self.closed:
            self._closed = True
            try:
                self._write_frame(_OP_CLOSE, struct.pack("!H", code))
                await asyncio.wait_for(self._writer.drain(), 2)
            except (TimeoutError, ConnectionError, ssl.SSLError):
                pass
        self._writer.close()


class FrameSocket:
    """WhatsApp framing over a websocket: connection header, then ``len24`` frames."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.header: bytes | None = None
        self._buffer = bytearray()

    async def read_frame(self) -> bytes | None:
        """Next complete frame, or ``None`` at end of stream."""
        while True:
            if self.header is None and len(self._buffer) >= 4:
                self.header = bytes(self._buffer[:4])
                del self._buffer[:4]
            if self.header is not None and len(self._buffer) >= 3:
                length = int.from_bytes(self._buffer[:3], "big")
                if len(self._buffer) >= 3 + length:
                    frame = bytes(self._buffer[3 : 3 + length])
                    del self._buffer[: 3 + length]
                    return frame
            message = await self.ws.recv()
            if message is None:
                return None
            self._buffer += message

    async def send_frame(self, payload: bytes) -> None:
        if len(payload) > FRAME_MAX:
            raise TransportError(f"frame of {len(payload)} bytes exceeds the 24-bit limit")
        await self.ws.send(len(payload).to_bytes(3, "big") + payload)


TunnelHandler = Callable[[WebSocket], Awaitable[None]]
ProtocolFactory = Callable[[], asyncio.Protocol]


class FrontDoor(asyncio.Protocol):
    """Reads the first request line, then hands the connection to the proxy or the API.

    ``CONNECT`` requests become a TLS-terminated websocket passed to ``on_tunnel`` (or, to
    the media CDN, a TLS-terminated connection served by a protocol from
    ``media_protocol``); any other request is fed to a fresh aiohttp protocol built by
    ``api_protocol``.
    """

    def __init__(
        self,
        tls: ssl.SSLContext,
        on_tunnel: TunnelHandler,
        api_protocol: ProtocolFactory,
        tasks: set[asyncio.Task],
        media_protocol: ProtocolFactory | None = None,
    ) -> None:
        self._tls = tls
        self._on_tunnel = on_tunnel
        self._media_protocol = media_protocol
        self._api_protocol = api_protocol
        self._tasks = tasks
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport is not an asyncio.Transport subclass, so no isinstance.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        assert transport is not None
        self._buffer += data
        if b"\r\n" not in self._buffer:
            if len(self._buffer) > MAX_HEADER_BYTES:
                transport.close()
            return
        line = bytes(self._buffer.split(b"\r\n", 1)[0])
        if self._is_media(line):
            if b"\r\n\r\n" not in self._buffer:
                if len(self._buffer) > MAX_HEADER_BYTES:
                    transport.close()
                return
            # Nothing more is read until the TLS layer takes the connection over.
            transport.pause_reading()
            self._spawn(self._media_tunnel(transport))
        elif line.startswith(b"CONNECT "):
            # A client_connected_cb marks the stream protocol as server side, which is
            # what StreamWriter.start_tls() needs to terminate the TLS.
            reader = asyncio.StreamReader(limit=MAX_HEADER_BYTES)
            tunnel = asyncio.StreamReaderProtocol(reader, self._start_tunnel)
            transport.set_protocol(tunnel)
            tunnel.connection_made(transport)
            reader.feed_data(bytes(self._buffer))
        else:
            api = self._api_protocol()
            transport.set_protocol(api)
            api.connection_made(transport)
            api.data_received(bytes(self._buffer))
        self._buffer.clear()

    def _is_media(self, line: bytes) -> bool:
        parts = line.split(b" ")
        return (
            self._media_protocol is not None
            and parts[0] == b"CONNECT"
            and len(parts) == 3
            and parts[1].decode("latin-1") in MEDIA_TARGETS
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._spawn(self._tunnel(reader, writer))

    async def _media_tunnel(self, transport: asyncio.Transport) -> None:
        """Answer the CONNECT, terminate the TLS and hand the connection to the CDN's HTTP
        server, which streams bodies (uploads are up to a hundred megabytes)."""
        assert self._media_protocol is not None
        transport.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        cdn = self._media_protocol()
        try:
            tls = await asyncio.get_running_loop().start_tls(
                transport, cdn, self._tls, server_side=True, ssl_handshake_timeout=SETUP_TIMEOUT
            )
        except (TimeoutError, ConnectionError, ssl.SSLError) as exc:
            log.info("media tunnel setup failed: %s", exc or type(exc).__name__)
            transport.close()
            return
        if tls is None:
            transport.close()
            return
        cdn.connection_made(tls)  # start_tls leaves that to its caller

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(SETUP_TIMEOUT):
                if not await self._open_tunnel(reader, writer):
                    return
                ws = WebSocket(reader, writer)
                await ws.accept()
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            ssl.SSLError,
            TransportError,
            IndexError,
        ) as exc:
            log.info("tunnel setup failed: %s", exc or type(exc).__name__)
            writer.close()
            return
        await self._on_tunnel(ws)

    async def _open_tunnel(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer the CONNECT and terminate TLS; False when the target is refused."""
        request = await reader.readuntil(b"\r\n\r\n")
        target = request.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
        if target not in ALLOWED_TARGETS:
            log.warning("refusing CONNECT to %s", target)
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return False
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await writer.start_tls(self._tls)
        return True
