"""Deleting a session, the supervisor's side: its device logged out of WhatsApp when it
can be, then everything the gateway holds of it forgotten (runner, lock, registry row,
lease, event state, keys, folder, worker uid).

The route is ``gateway/sessions.py``'s (and GoWA's ``devices.py``); the registry drops
the session's stores.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from gowa_py import protocol as p
from gowa_py.archive import session as archive
from gowa_py.errors import GowaError
from gowa_py.ipc import GatewaySockets
from gowa_py.registry import SessionRecord
from gowa_py.storage.interfaces import RegistryStorage
from gowa_py.supervisor.dispatch import EventDispatch
from gowa_py.supervisor.identity import WorkerIds
from gowa_py.supervisor.leases import SessionLeases
from gowa_py.supervisor.locks import LifecycleLocks
from gowa_py.supervisor.runner import SessionRunner

log = logging.getLogger("gowa.supervisor")


class SessionDeletion:
    def __init__(
        self,
        registry: RegistryStorage,
        runners: dict[str, SessionRunner],
        locks: LifecycleLocks,
        sessions_dir: Path,
        events: EventDispatch,
        leases: SessionLeases,
        sockets: GatewaySockets,
        worker_ids: WorkerIds,
        command_timeout: float,
        require: Callable[[str], SessionRecord],
        exclusive: Callable[[str], AbstractAsyncContextManager[SessionRunner]],
        ready: Callable[[str, float], Awaitable[SessionRunner]],
        request: Callable[[str, p.Command, float], Awaitable[p.Result]],
    ) -> None:
        self._registry = registry
        self._runners = runners
        self._locks = locks
        self._sessions_dir = sessions_dir
        self._events = events
        self._leases = leases
        self._sockets = sockets
        self._worker_ids = worker_ids
        self._command_timeout = command_timeout
        self._require = require
        #: The supervisor's lifecycle lock, and a running worker ready for a command
        #: (a hibernated one woken) for a caller that holds it.
        self._exclusive = exclusive
        self._ready = ready
        self._request = request

    async def delete(self, session_id: str) -> bool:
        """Log the device out of WhatsApp, then forget the session. True when no linked
        device is left behind on the phone; False when the session was logged in but could
        not be logged out (stopped by hand or not connected; a hibernated one is woken for it):
        the phone still lists it until removed there."""
        async with self._exclusive(session_id):
            unlinked = await self._unlink(session_id)
            runner = self._runners.pop(session_id)
            self._locks.forget(session_id)
            await runner.stop()
            await self._events.notice(session_id, p.SESSION_DELETED, {"unlinked": unlinked})
            self._registry.delete(session_id)
            await self._forget_here(session_id)
            return unlinked

    async def deleted_elsewhere(self, session_id: str) -> None:
        """In a cluster, the session was deleted through another node: drop what this node
        kept of it (the idle runner every node has of every session, its folder if it ran
        here once), so a session made again under its id here starts afresh. The caller
        checked that no worker of it runs here (the runner has nothing to stop)."""
        self._runners.pop(session_id, None)
        self._locks.forget(session_id)
        await self._forget_here(session_id)

    async def _forget_here(self, session_id: str) -> None:
        """What this node keeps of a deleted session, beside its runner and lock."""
        self._leases.forget(session_id)  # the lease went with the session
        self._events.forget(session_id)
        self._sockets.revoke(session_id)
        folder = self._sessions_dir / session_id
        if folder.resolve().parent == self._sessions_dir.resolve():
            await asyncio.to_thread(shutil.rmtree, folder, True)
        self._worker_ids.release(session_id)

    async def _unlink(self, session_id: str) -> bool:
        """WhatsApp's logout (``remove-companion-device``) for a session being deleted.
        An exported session's device lives on where it was imported: nothing is left
        behind here, and it must not be unlinked."""
        record = self._require(session_id)
        if record.me is None or archive.exported_mark(self._sessions_dir / session_id) is not None:
            return True
        timeout = min(self._command_timeout, 10.0)
        try:
            await self._ready(session_id, timeout)  # a hibernated session is woken for it
            if self._require(session_id).status is not p.SessionState.CONNECTED:
                return False
            await self._request(session_id, p.Logout(), timeout)
        except (GowaError, TimeoutError) as exc:
            log.warning("[%s] deleted without logging out: %s", session_id, exc)
            return False
        return True
