"""A TCP relay in front of PostgreSQL that can hold one statement on its way: the fault of
a node whose write was sent before it lost its lease and reaches the server after (a
stalled network, a paused VM between check and write). Plain bytes only: the client must
connect with ``sslmode=disable`` so the statement's text can be recognised."""

from __future__ import annotations

import contextlib
import socket
import threading


class HoldingProxy:
    """Relays connections from a free local port to ``target``; once :meth:`arm` ed, the
    first client packet containing ``pattern`` waits until :meth:`release`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._pattern: bytes | None = None
        self._lock = threading.Lock()
        #: Set once a packet is being held.
        self.holding = threading.Event()
        self._released = threading.Event()
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, name="pgproxy-accept", daemon=True).start()

    def arm(self, pattern: bytes) -> None:
        with self._lock:
            self._pattern = pattern

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self._closed = True
        self._released.set()
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _hold(self, data: bytes) -> bool:
        with self._lock:
            if self._pattern is None or self._pattern not in data:
                return False
            self._pattern = None  # only the first one
        return True

    def _pipe(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if from_client and self._hold(data):
                    self.holding.set()
                    self._released.wait()
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
