"""The QR code each session shows, followed from its events, for the login routes to await.

A worker emits ``session.qr`` with every new code and ``session.status`` when it leaves
``SCAN_QR_CODE`` (paired, stopped, restarted: the code is void then), so the supervisor,
which sees every event anyway, knows the live code without asking the worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gowa_py import protocol as p
from gowa_py.ipc import WorkerUnavailable
from gowa_py.registry import SessionRecord
from gowa_py.supervisor.errors import AlreadyLoggedIn, NoQrCode


class QrCodes:
    """The latest live QR code per session, and a wake-up for whoever waits on a session."""

    def __init__(self) -> None:
        self._codes: dict[str, p.QRCode] = {}
        self._changed: dict[str, asyncio.Event] = {}

    def observe(self, event: p.Event, worker_started_at: float | None) -> None:
        """Follow one event of a session; ``worker_started_at`` is when its current worker
        was spawned: a code from an earlier worker (replayed from the log) is not shown."""
        session_id = event.session_id
        if event.name == p.SESSION_QR:
            shown = p.read_payload(event, p.QRPayload)
            if shown is None or worker_started_at is None or event.timestamp < worker_started_at:
                return
            expires_at = event.timestamp + shown.qr_duration
            self._codes[session_id] = p.QRCode(code=shown.qr_code, expires_at=expires_at)
        elif event.name == p.SESSION_STATUS:
            change = p.read_payload(event, p.StatusPayload)
            if change is None or change.status is p.SessionState.SCAN_QR_CODE:
                return
            self._codes.pop(session_id, None)
        elif event.name == p.SESSION_DELETED:
            self._codes.pop(session_id, None)
        else:
            return
        changed = self._changed.pop(session_id, None)
        if changed is not None:
            changed.set()

    def current(self, session_id: str) -> p.QRCode | None:
        """The code the session's worker shows (until it leaves ``SCAN_QR_CODE``, as the
        worker's own status says)."""
        return self._codes.get(session_id)

    async def changed(self, session_id: str, timeout: float) -> None:
        """Return at the session's next QR code or status change, or after ``timeout``."""
        event = self._changed.setdefault(session_id, asyncio.Event())
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await event.wait()
        except TimeoutError:
            pass

    async def wait(
        self,
        session_id: str,
        timeout: float,
        record: Callable[[], SessionRecord],
        running: Callable[[str], bool],
    ) -> p.QRCode:
        """The session's code as soon as it shows one. Raises :class:`AlreadyLoggedIn`,
        :class:`NoQrCode` after ``timeout`` s, or ``WorkerUnavailable`` if the session
        stops while waiting (its codes expired, it crashed too often)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            current = record()
            if current.status == p.SessionState.CONNECTED and current.me is not None:
                raise AlreadyLoggedIn(session_id, current.me.jid)
            code = self.current(session_id)
            if code is not None:
                return code
            if not running(session_id):
                raise WorkerUnavailable(f"session {session_id!r} is not running; start it first")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise NoQrCode(session_id, timeout, current.status, current.error)
            await self.changed(session_id, remaining)
