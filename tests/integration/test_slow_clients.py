"""A client that connects and then sends nothing, or its request head a byte at a time,
is disconnected after ``body_timeout`` (a real ``gowa serve``; bodies: test_body_timeout)."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time

import pytest

pytestmark = pytest.mark.integration


def _closed_after(port: int, head: bytes, drip: bool) -> float:
    """Seconds until the gateway closes a connection that sent ``head`` (then, with
    ``drip``, one more header byte every 0.2 s)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    started = time.monotonic()
    sock.sendall(head)
    stop = threading.Event()

    def dripping() -> None:
        while not stop.wait(0.2):
            try:
                sock.sendall(b"a")
            except OSError:
                return

    dripper = threading.Thread(target=dripping, daemon=True)
    if drip:
        dripper.start()
    try:
        # A reset: closed with our unread bytes in its buffer.
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(100) == b""
        return time.monotonic() - started
    finally:
        stop.set()
        sock.close()


@pytest.mark.parametrize(
    ("head", "drip"),
    [(b"", False), (b"GET /healthz HTTP/1.1\r\nX-Slow: ", True)],
    ids=["idle", "trickled-head"],
)
def test_a_connection_without_a_request_is_closed(gateway_factory, head, drip):
    gateway = gateway_factory(env={"GOWA_BODY_TIMEOUT": "1"})
    assert 0.9 < _closed_after(gateway.port, head, drip) < 5


def test_kept_alive_connections_are_not_cut(gateway_factory):
    gateway = gateway_factory(env={"GOWA_BODY_TIMEOUT": "1"})
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    for _ in range(2):
        connection.request("GET", "/healthz")
        assert connection.getresponse().read() and True
        time.sleep(1.5)
    connection.request("GET", "/healthz")
    assert connection.getresponse().status == 200
    connection.close()
