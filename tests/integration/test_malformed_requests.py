"""Requests aiohttp cannot parse, or whose client vanishes, against a real ``gowa serve``:
a JSON envelope (never aiohttp's plain text), no traceback in the log, clean shutdown."""

from __future__ import annotations

import json
import socket

import pytest

pytestmark = pytest.mark.integration


def _exchange(port: int, raw: bytes) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert b"application/json" in head, head
    return status, json.loads(body)


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /api/sessions?x=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        b"GET /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Many: 1\r\n" * 200 + b"\r\n",
        b"GET /api/sessions HTTP/1.1\r\nBad Header\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 not http\r\n\r\n",
    ],
    ids=["url-9k", "header-9k", "200-headers", "bad-header", "tls-hello"],
)
def test_unparsable_requests_get_the_envelope(gateway, raw):
    status, body = _exchange(gateway.port, raw)
    assert 400 <= status < 500, (status, body)
    assert set(body) == {"code", "message", "results"} and body["results"] is None
    assert "a" * 100 not in body["message"]  # the oversized line is not echoed
    assert gateway.http.get("/healthz")[0] == 200
    assert "Traceback" not in gateway.log_path.read_text()


def test_client_leaving_mid_body_logs_no_traceback(gateway):
    for path in ("/api/sessions", "/send/image"):
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\n"
                "Content-Length: 100000\r\n\r\n--b\r\n".encode()
                if path == "/send/image"
                else f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{".encode()
            )
    status, _ = gateway.http.get("/healthz")
    assert status == 200
    log = gateway.log_path.read_text()
    assert "Traceback" not in log and "unhandled error" not in log, log
    assert gateway.stop() == 0
