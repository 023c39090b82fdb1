"""Reading a ZeroMQ socket on the event loop, used by both ends."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import zmq


def readable(sock: zmq.Socket[bytes]) -> bool:
    """Whether a message waits (ZeroMQ's descriptor alone does not say: it is edge-triggered)."""
    return bool(cast(int, sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN)


class Receiver:
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
        if readable(self._sock):
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
                if not readable(self._sock):
                    await self._ready.wait()
                continue
            self._burst += 1
            if self._burst >= self.BURST:
                self._burst = 0
                await asyncio.sleep(0)
            return frames

    def close(self) -> None:
        self._loop.remove_reader(self._fd)
