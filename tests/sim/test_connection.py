"""A connection speaks the dictionary its client announced, and waits a round trip first."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from types import SimpleNamespace

from gowa_py.sim.binary import Node, marshal, unmarshal
from gowa_py.sim.connection import Connection
from gowa_py.sim.noise import FrameCipher
from gowa_py.sim.pb import ClientPayload
from gowa_py.sim.tokens import tokens_for
from gowa_py.sim.transport import FrameSocket, WebSocket

#: The pause that was found to let Baileys switch to transport mode on loopback.
BAILEYS_NEEDS = 0.02


async def _first_frame(version: int, node: Node) -> tuple[float, bytes]:
    """Send ``node`` right after the handshake; seconds until the client got it, payload."""
    server_sock, client_sock = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=server_sock)
    client_reader, client_writer = await asyncio.open_connection(sock=client_sock)
    key = os.urandom(32)
    conn = Connection(
        FrameSocket(WebSocket(reader, writer)),
        FrameCipher(os.urandom(32)),
        FrameCipher(key),
        b"",
        ClientPayload(),
        SimpleNamespace(delay_ms=0),
        tokens_for(version),
    )
    started = time.monotonic()
    conn.send(node)
    opcode, length = await client_reader.readexactly(2)
    elapsed = time.monotonic() - started
    assert opcode == 0x82 and length < 126  # one unmasked binary websocket message
    message = await client_reader.readexactly(length)
    assert int.from_bytes(message[:3], "big") == length - 3
    await conn.close()
    client_writer.close()
    return elapsed, FrameCipher(key).decrypt(message[3:])


def test_first_frame_waits_and_uses_the_clients_dictionary() -> None:
    """Baileys (v2) loses a frame that arrives before it switched to transport mode."""
    node = Node("success", {"t": "1", "location": "sim", "props": "1"})
    for version in (2, 3):
        elapsed, payload = asyncio.run(_first_frame(version, node))
        assert elapsed >= BAILEYS_NEEDS
        assert unmarshal(payload, tokens_for(version)) == node
        assert payload != marshal(node, tokens=tokens_for(5 - version))
