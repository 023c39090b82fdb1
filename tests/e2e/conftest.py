"""A real sandbox network and a real ``gowa serve --sandbox`` gateway for end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.procs import Gateway, wait_until
from tests.receiver import WebhookReceiver
from tests.sim.harness import SandboxProcess

SUBPROCESS_WORKERS = {"GOWA_WORKER_MODE": "subprocess"}
#: The ``receiver`` fixture's signing secret.
WEBHOOK_SECRET = "s3cret"


class EventWatcher:
    """Collects the gateway's live event stream (the public WebSocket) in a thread."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        if not self._connected.wait(10):
            raise AssertionError("event stream did not connect")

    async def _run(self) -> None:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(self.url, headers=self.headers) as ws,
        ):
            self._connected.set()
            while not self._stop.is_set():
                try:
                    message = await ws.receive(timeout=0.2)
                except TimeoutError:
                    continue
                if message.type != aiohttp.WSMsgType.TEXT:
                    return
                with self._lock:
                    self.events.append(json.loads(message.data))

    def find(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        with self._lock:
            return [event for event in self.events if predicate(event)]

    def wait(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        return wait_until(
            lambda: (found := self.find(predicate)) and found[0], timeout, interval=0.02, what=what
        )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    sim = SandboxProcess(tmp_path_factory.mktemp("sim"))
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def sandbox_gateway(
    sandbox: SandboxProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    data_dir = tmp_path_factory.mktemp("gateway") / "data"
    gateway = Gateway(data_dir, env=SUBPROCESS_WORKERS, args=["--sandbox", sandbox.url])
    gateway.start()
    yield gateway
    gateway.cleanup()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver (secret ``WEBHOOK_SECRET``) for the test's gateways."""
    receiver = WebhookReceiver(WEBHOOK_SECRET).start()
    yield receiver
    receiver.close()


@pytest.fixture
def events(sandbox_gateway: Gateway) -> Iterator[EventWatcher]:
    watcher = EventWatcher(
        sandbox_gateway.http.base.replace("http", "ws") + "/api/dashboard/events"
    )
    yield watcher
    watcher.close()


def is_event(name: str, session_id: str, **payload: Any) -> Callable[[dict[str, Any]], bool]:
    """A predicate for :meth:`EventWatcher.wait`: this event, this session, these fields."""

    def match(event: dict[str, Any]) -> bool:
        return (
            event["event"] == name
            and event["session_id"] == session_id
            and all(event["payload"].get(k) == v for k, v in payload.items())
        )

    return match


def new_phone(sandbox: SandboxProcess, phone: str, name: str) -> str:
    status, body = sandbox.api("POST", "/sim/phones", {"phone": phone, "push_name": name})
    assert status == 201, body
    return phone


def pair(gateway: Gateway, sandbox: SandboxProcess, session_id: str, phone: str) -> float:
    """Create a session, scan its QR with the sandbox phone; returns seconds scan→CONNECTED."""
    status, body = gateway.http.post("/api/sessions", {"session_id": session_id})
    assert status == 201, body
    status, body = gateway.http.get(f"/api/{session_id}/app/login")
    assert status == 200, body
    qr = body["results"]["qr_code"]
    assert qr and body["results"]["qr_duration"] > 0
    scanned = time.monotonic()
    status, body = sandbox.api("POST", f"/sim/phones/{phone}/scan", {"qr": qr})
    assert status == 200, body
    session = gateway.wait_status(session_id, {"CONNECTED"}, timeout=10)
    assert session["me"]["jid"] == f"{phone}@s.whatsapp.net"
    return time.monotonic() - scanned


def session_dir(gateway: Gateway, session_id: str) -> Path:
    return gateway.data_dir / "sessions" / session_id
