"""The cap on sessions pairing at once (``max_pairing``).

Each pairing worker holds a connection and QR state, and a storm of them is what
exhausted memory in other gateways. Sessions with an account are not counted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from gowa_py import protocol as p
from gowa_py.storage.interfaces import RegistryStorage
from gowa_py.supervisor.errors import PairingLimit
from gowa_py.supervisor.runner import SessionRunner


class PairingCap:
    def __init__(
        self, registry: RegistryStorage, runners: Mapping[str, SessionRunner], limit: int
    ) -> None:
        self._registry = registry
        self._runners = runners
        self._limit = limit
        #: Sessions between their check and their runner running.
        self._starting: set[str] = set()

    def pairing(self) -> set[str]:
        """The sessions pairing or about to: a worker running, or being started, for a
        session without an account (starting, showing QR codes or a pairing code)."""
        pairing = set(self._starting)
        for record in self._registry.all():
            runner = self._runners.get(record.id)
            if record.me is None and runner is not None and runner.running:
                pairing.add(record.id)
        return pairing

    @asynccontextmanager
    async def starting(self, session_id: str, me: p.Me | None) -> AsyncIterator[None]:
        """Around the start of the session's worker: refuse it (:class:`PairingLimit`) if it
        would put more than ``limit`` sessions into pairing, else count it while it starts."""
        if self._limit > 0 and me is None:
            pairing = self.pairing()
            if session_id not in pairing and len(pairing) >= self._limit:
                raise PairingLimit(len(pairing), self._limit)
        self._starting.add(session_id)
        try:
            yield
        finally:
            self._starting.discard(session_id)
