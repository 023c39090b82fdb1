"""One lifecycle operation at a time per session (start, stop, restart, logout, reconnect,
delete, hibernate), in the order they arrived.

Interleaved, a restart's stop could meet another request's start half-way, and the
session was left to whichever finished last. A request waits at most ``wait`` s for the
ones before it (then :class:`SessionBusy`); each operation is bounded itself
(``stop_timeout``, ``start_timeout``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from gowa_py.supervisor.errors import SessionBusy, SessionMissing
from gowa_py.supervisor.runner import SessionRunner


class LifecycleLocks:
    def __init__(self, runners: Mapping[str, SessionRunner], wait: float) -> None:
        self._runners = runners
        self._wait = wait
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[SessionRunner]:
        """The session's runner, with its lock held (``SessionMissing`` if the session was
        deleted while this request waited)."""
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        try:
            async with asyncio.timeout(self._wait):
                await lock.acquire()
        except TimeoutError:
            raise SessionBusy(session_id, self._wait) from None
        try:
            runner = self._runners.get(session_id)
            if runner is None or self._locks.get(session_id) is not lock:
                raise SessionMissing(session_id)
            yield runner
        finally:
            lock.release()

    def busy(self, session_id: str) -> bool:
        """Whether a request is acting on the session now."""
        lock = self._locks.get(session_id)
        return lock is not None and lock.locked()

    def forget(self, session_id: str) -> None:
        """The session is deleted: a request waiting for its lock finds it missing."""
        self._locks.pop(session_id, None)
