"""Hibernation: a logged-in session idle for its ``idle_timeout`` seconds loses its worker
(the memory goes back), and the next request for it starts one again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping

from gowa_py import protocol as p
from gowa_py.storage.interfaces import RegistryStorage
from gowa_py.supervisor.errors import SessionBusy, SessionMissing
from gowa_py.supervisor.locks import LifecycleLocks
from gowa_py.supervisor.runner import SessionRunner

log = logging.getLogger("gowa.supervisor")

#: How often idle sessions are looked for (``idle_timeout`` is at least 60 s).
HIBERNATE_CHECK_S = 5.0


class Hibernation:
    def __init__(
        self,
        registry: RegistryStorage,
        runners: Mapping[str, SessionRunner],
        locks: LifecycleLocks,
    ) -> None:
        self._registry = registry
        self._runners = runners
        self._locks = locks
        self._last_use: dict[str, float] = {}

    def touch(self, session_id: str) -> None:
        """A request for the session or WhatsApp activity on it: it is not idle."""
        self._last_use[session_id] = time.monotonic()

    async def wait_connected(self, session_id: str, timeout: float) -> None:
        """After a wake-up, give a logged-in session the time to reconnect (the caller waits)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self._registry.get(session_id)
            if record is None or record.status == p.SessionState.CONNECTED:
                return
            await asyncio.sleep(0.05)

    async def run(self) -> None:
        """Stop the worker of a logged-in session idle for its ``idle_timeout`` seconds."""
        while True:
            await asyncio.sleep(HIBERNATE_CHECK_S)
            now = time.monotonic()
            for record in self._registry.all():
                runner = self._runners.get(record.id)
                idle_timeout = record.config.idle_timeout
                if not idle_timeout or runner is None or not runner.running:
                    continue
                if record.status not in (p.SessionState.CONNECTED, p.SessionState.DISCONNECTED):
                    continue  # one waiting for a QR scan or starting is not idle
                if now - self._last_use.setdefault(record.id, now) < idle_timeout:
                    continue
                if self._locks.busy(record.id):
                    continue  # a request is acting on it: not idle
                with contextlib.suppress(SessionBusy, SessionMissing):
                    async with self._locks.hold(record.id):
                        if not runner.running:
                            continue
                        log.info("[%s] idle for %d s: hibernating", record.id, idle_timeout)
                        runner.hibernated = True
                        await runner.stop(
                            p.SessionState.STOPPED,
                            f"hibernated after {idle_timeout} s idle; the next request wakes it",
                        )
