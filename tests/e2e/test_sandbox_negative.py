"""Negative control: without the sandbox root key, whatsmeow refuses the sandbox's certificate."""

from __future__ import annotations

import asyncio
import threading

import pytest
from aiohttp import web

from gowa_py.sim.redirect import WA_CERT_PUB_KEY
from tests.e2e.conftest import SUBPROCESS_WORKERS
from tests.procs import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def info_without_root_key(sandbox):
    """A real HTTP server that serves the sandbox's /sim/info with WhatsApp's own root key."""
    info = {**sandbox.info(), "root_key": WA_CERT_PUB_KEY.hex()}
    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def handler(_request):
        return web.json_response(info)

    async def serve():
        app = web.Application()
        app.router.add_get("/sim/info", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        return runner

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    ready.wait(5)
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_handshake_fails_without_root_key_replacement(gateway_factory, info_without_root_key):
    gateway = gateway_factory(env=SUBPROCESS_WORKERS, args=["--sandbox", info_without_root_key])
    status, body = gateway.http.post("/api/sessions", {"session_id": "neg"})
    assert status == 201, body
    session = gateway.wait_status("neg", {"DISCONNECTED"}, timeout=20)
    assert "cert" in session["error"], session["error"]
