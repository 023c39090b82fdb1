"""One client connection after the Noise handshake: encrypted node I/O in order.

Outgoing nodes go through a queue drained by a single writer task, so the transport
counter always matches the wire order and an injected delay (``faults.delay_ms``) slows
the connection down without reordering it.

Nothing is sent in the first :data:`HANDSHAKE_SETTLE` seconds after the handshake. Over
the real network a client's ClientFinish and the server's first stanza are a round trip
apart; Baileys relies on that: it switches its noise state to transport mode only after
its write of ClientFinish completed and an asynchronous HKDF ran, and a frame arriving
earlier is taken for a handshake message and lost (the session then hangs). The pause
stands in for that minimum latency on a loopback connection.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Protocol

from .binary import BinaryError, Node, marshal, unmarshal
from .jid import JID
from .noise import FrameCipher, NoiseError
from .pb import ClientPayload
from .tokens import TokenTables
from .transport import FrameSocket

log = logging.getLogger(__name__)

_conn_ids = itertools.count(1)
#: Seconds a client gets to hang up by itself after a final stanza.
HANGUP_GRACE = 3.0
#: Seconds between the handshake and the first frame the server sends (see above).
HANDSHAKE_SETTLE = 0.05


class Faults(Protocol):
    delay_ms: int


class Connection:
    """An authenticated-transport connection to one client (paired or still pairing)."""

    def __init__(
        self,
        frames: FrameSocket,
        reader: FrameCipher,
        writer: FrameCipher,
        client_static: bytes,
        payload: ClientPayload,
        faults: Faults,
        tokens: TokenTables,
    ) -> None:
        self.id = next(_conn_ids)
        self.client_static = client_static
        self.payload = payload
        #: Set once logged in: the companion's PN device JID and LID device JID.
        self.jid: JID | None = None
        self.lid: JID | None = None
        self.available = False
        self._frames = frames
        self._reader = reader
        self._cipher = writer
        self._faults = faults
        #: The WABinary dictionary the client announced (v3 for whatsmeow, v2 for Baileys).
        self.tokens = tokens
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._writer_task = asyncio.get_running_loop().create_task(self._write_loop())
        self._closing = False
        self._hangup: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"<Connection #{self.id} {self.jid or 'unpaired'}>"

    @property
    def phone(self) -> str:
        assert self.jid is not None
        return self.jid.user

    @property
    def device(self) -> int:
        assert self.jid is not None
        return self.jid.device

    @property
    def closed(self) -> bool:
        return self._closing or self._frames.ws.closed

    def send(self, node: Node) -> None:
        """Queue a node for this client (encoding errors raise here, in the caller)."""
        self.send_payload(marshal(node, tokens=self.tokens))
        log.debug("-> %r %s", self, node)

    def send_payload(self, payload: bytes) -> None:
        if not self._closing:
            self._outbox.put_nowait(payload)

    async def recv(self) -> Node | None:
        """Next decoded node; ``None`` when the connection ended."""
        while True:
            frame = await self._frames.read_frame()
            if frame is None:
                return None
            try:
                node = unmarshal(self._reader.decrypt(frame), self.tokens)
            except (NoiseError, BinaryError) as exc:
                log.warning("%r: dropping bad frame: %s", self, exc)
                continue
            log.debug("<- %r %s", self, node)
            return node

    async def _write_loop(self) -> None:
        try:
            await asyncio.sleep(HANDSHAKE_SETTLE)
            while (payload := await self._outbox.get()) is not None:
                if self._faults.delay_ms:
                    await asyncio.sleep(self._faults.delay_ms / 1000)
                await self._frames.send_frame(self._cipher.encrypt(payload))
        except (ConnectionError, OSError) as exc:
            log.info("%r: write failed: %s", self, exc)
        finally:
            await self._frames.ws.close()

    def end(self, final: Node, grace: float = HANGUP_GRACE) -> None:
        """Send a final stanza (stream error, failure) and let the client hang up.

        whatsmeow acts on such a stanza asynchronously and drops frames that are still
        queued when the socket closes under it, so the server does not close at once:
        it keeps reading until the client disconnects, or aborts after ``grace`` seconds.
        """
        self.send(final)
        if self._hangup is None:
            self._hangup = asyncio.get_running_loop().call_later(grace, self.abort)

    async def close(self) -> None:
        """Flush what is queued, send a websocket close frame and close."""
        if self._hangup is not None:
            self._hangup.cancel()
        if self._closing:
            return
        self._closing = True
        self._outbox.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._writer_task), 5)
        except TimeoutError:
            self._writer_task.cancel()

    def abort(self) -> None:
        """Close now without flushing (fault injection, hang-up timeout, shutdown)."""
        self._closing = True
        self._writer_task.cancel()
