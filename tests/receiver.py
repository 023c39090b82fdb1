"""A real HTTP webhook receiver for tests: it can go down and come back on the same port."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gowa_py.webhooks.signing import HEADER, verify
from tests.procs import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]
    signature_ok: bool
    at: float = field(default_factory=time.time)


class WebhookReceiver:
    def __init__(self, secret: str, delay: float = 0.0) -> None:
        self.secret = secret
        self.delay = delay
        self.port = free_port()
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        item = Received(
            dict(request.headers),
            json.loads(raw),
            verify(raw, self.secret, request.headers.get(HEADER, "")),
        )
        with self._lock:
            self.received.append(item)
        return web.Response(text="ok")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> WebhookReceiver:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def items(self, event: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if event is None or r.body["event"] == event]
