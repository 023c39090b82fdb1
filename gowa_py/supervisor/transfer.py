"""Moving a session between gateways, the supervisor's side: a session held stopped while
its files are read (an export), left marked exported, or installed from an archive.

The archive itself is :mod:`gowa_py.archive`'s; the routes are ``gateway/transfer.py``'s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from gowa_py import protocol as p
from gowa_py.archive import session as archive
from gowa_py.archive.manifest import ArchivedSession, Manifest
from gowa_py.registry import SessionRecord
from gowa_py.storage.interfaces import RegistryStorage
from gowa_py.supervisor.dispatch import EventDispatch
from gowa_py.supervisor.runner import SessionRunner


class SessionTransfer:
    def __init__(
        self,
        registry: RegistryStorage,
        sessions_dir: Path,
        events: EventDispatch,
        clustered: bool,
        require: Callable[[str], SessionRecord],
        exclusive: Callable[[str], AbstractAsyncContextManager[SessionRunner]],
        start_runner: Callable[[str, SessionRunner], Awaitable[None]],
        check_new: Callable[[str], None],
        add_runner: Callable[[str], None],
        start_session: Callable[[str], Awaitable[SessionRecord]],
    ) -> None:
        self._registry = registry
        self._sessions_dir = sessions_dir
        self._events = events
        self._clustered = clustered
        self._require = require
        #: The supervisor's lifecycle lock and its one way to start a stopped worker.
        self._exclusive = exclusive
        self._start_runner = start_runner
        #: A new session's id may be taken (``max_sessions``); then its runner is made.
        self._check_new = check_new
        self._add_runner = add_runner
        self._start_session = start_session

    @asynccontextmanager
    async def quiesced(self, session_id: str, resume: bool) -> AsyncIterator[SessionRecord]:
        """The session with its worker stopped, for the caller to read its files (an
        export), under its lifecycle lock. A worker that ran is started again afterwards
        when ``resume``, or when the caller failed."""
        async with self._exclusive(session_id) as runner:
            was_running = runner.running
            if was_running:
                await runner.stop()
            done = False
            try:
                yield self._require(session_id)
                done = True
            finally:
                if was_running and (resume or not done):
                    await self._start_runner(session_id, runner)

    async def mark_exported(self, session_id: str, manifest: Manifest) -> None:
        """The session was moved away (inside :meth:`quiesced`): it stays stopped here, and
        says why, until it is deleted or the mark removed by hand."""
        self._registry.set_desired(session_id, "stopped")
        error = archive.mark_exported(self._sessions_dir / session_id, manifest)
        await self._events.publish_status(session_id, p.SessionState.STOPPED, error)

    async def adopt(
        self, session_id: str, folder: Path, session: ArchivedSession, start: bool
    ) -> SessionRecord:
        """Install an unpacked session archive as ``session_id`` and start it."""
        self._check_new(session_id)
        # In a cluster, start_session makes it "running" once it holds the lease (create).
        desired = "running" if start and not self._clustered else "stopped"
        # On the loop: the registry's connection belongs to it (a rename and a few rows).
        archive.install(self._registry, self._sessions_dir, session_id, folder, session, desired)
        self._add_runner(session_id)
        await self._events.publish_status(session_id, p.SessionState.STOPPED, None)
        if start:
            await self._start_session(session_id)
        return self._require(session_id)
