"""A session's proxy is dialled by its worker: the SSRF policy applies to it at the gateway.

Real gateway and worker processes; a real TCP server on loopback stands in for a proxy
(an operator's local one when allowed, an internal service when not).
"""

from __future__ import annotations

import json
import socket
import threading

import pytest

from tests.e2e.conftest import EventWatcher
from tests.procs import free_port, wait_until
from workers.session import CONNECT_FAILED

pytestmark = pytest.mark.integration


class LoopbackProxy:
    """Accepts connections on 127.0.0.1, keeps each first request line, answers 502."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self.requests.append(conn.recv(4096).split(b"\r\n", 1)[0])
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def proxy():
    server = LoopbackProxy()
    yield server
    server.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}",
        "socks5://localhost:{port}",
        "http://[::1]:{port}",
        "https://[::ffff:127.0.0.1]:{port}",
        "socks5://[64:ff9b::7f00:1]:{port}",
        "http://169.254.169.254:{port}",
        "socks5://10.0.0.1",
    ],
)
def test_internal_proxies_are_refused(gateway, proxy, url):
    url = url.format(port=proxy.port)
    status, body = gateway.http.post(
        "/api/sessions", {"session_id": "p", "start": True, "config": {"proxy": url}}
    )
    assert (status, body["code"]) == (400, "VALIDATION_ERROR"), body
    assert "$.config.proxy" in body["message"] and "proxy_allow_networks" in body["message"]
    status, body = gateway.http.post("/api/sessions", {"session_id": "p", "start": False})
    assert status == 201, body
    status, body = gateway.http.call("PATCH", "/api/sessions/p", {"config": {"proxy": url}})
    assert (status, body["code"]) == (400, "VALIDATION_ERROR"), body
    assert gateway.session("p")["config"]["proxy"] is None
    assert proxy.requests == []


def test_unresolvable_proxy_is_refused(gateway):
    status, body = gateway.http.post(
        "/api/sessions",
        {"session_id": "p", "start": False, "config": {"proxy": "http://nowhere.invalid:8080"}},
    )
    assert (status, body["code"]) == (400, "VALIDATION_ERROR"), body
    assert "$.config.proxy" in body["message"]


def test_allowed_local_proxy_is_used_and_dial_errors_stay_in_the_worker_log(gateway_factory, proxy):
    gateway = gateway_factory({"GOWA_PROXY_ALLOW_NETWORKS": "127.0.0.0/8"})
    closed = free_port()
    events = EventWatcher(gateway.http.base.replace("http", "ws") + "/api/dashboard/events")
    try:
        for session_id, port in (("open", proxy.port), ("closed", closed)):
            status, body = gateway.http.post(
                "/api/sessions",
                {"session_id": session_id, "config": {"proxy": f"http://127.0.0.1:{port}"}},
            )
            assert status == 201, body
        # The worker dialled the operator's proxy and asked it for WhatsApp.
        wait_until(lambda: proxy.requests, 60, what="a CONNECT through the proxy")
        assert proxy.requests[0].startswith(b"CONNECT "), proxy.requests
        # Whether the port answered (502) or not (refused), the API says the same thing.
        for session_id in ("open", "closed"):
            session = gateway.wait_status(session_id, {"DISCONNECTED"}, timeout=60)
            assert session["error"] == CONNECT_FAILED
        logs = json.dumps(events.find(lambda e: e.get("event") == "log"))
        assert "DISCONNECTED" in logs, "the live log carried no status line"
        assert str(closed) not in logs and "refused" not in logs, logs
        assert str(proxy.port) not in logs and "502" not in logs, logs
    finally:
        events.close()
    worker_log = (gateway.data_dir / "sessions" / "closed" / "worker.log").read_text()
    assert f"127.0.0.1:{closed}" in worker_log


def test_proxy_is_judged_again_at_every_start(gateway_factory, proxy, tmp_path):
    """A proxy set while the allow list had its network (or by a version without the check,
    or a name that resolves elsewhere now) is refused when the worker would start."""
    data_dir = tmp_path / "data"
    allowed = gateway_factory({"GOWA_PROXY_ALLOW_NETWORKS": "127.0.0.0/8"}, data_dir=data_dir)
    url = f"http://localhost:{proxy.port}"
    status, body = allowed.http.post(
        "/api/sessions", {"session_id": "p", "start": False, "config": {"proxy": url}}
    )
    assert status == 201, body
    allowed.stop()

    gateway = gateway_factory(data_dir=data_dir)
    status, body = gateway.http.post("/api/sessions/p/start")
    assert status == 200, body
    session = gateway.wait_status("p", {"FAILED"}, timeout=30)
    assert "proxy_allow_networks" in session["error"], session
    assert session["worker"]["pid"] is None
    assert proxy.requests == []
    # Other fields can still be changed; the proxy it keeps is judged at the next start.
    status, body = gateway.http.call("PATCH", "/api/sessions/p", {"config": {"auto_reply": "hi"}})
    assert status == 200, body
