"""Events, from the workers and the supervisor's own, on their way to the listeners.

A worker's numbered events go through the :class:`EventSequencer` (in order, gaps
fetched again); applying one writes what it says about the session (status, account,
last sequence number) to the registry before the listeners see it, so a listener that
reads the registry agrees with the event. The supervisor's own events (status changes,
notices) carry no sequence number and go straight out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import msgspec

from gowa_py import protocol as p
from gowa_py.eventbody import EventBody
from gowa_py.registry import LeaseLost
from gowa_py.storage.interfaces import RegistryStorage
from gowa_py.supervisor.errors import SessionBusy, SessionMissing
from gowa_py.supervisor.locks import LifecycleLocks
from gowa_py.supervisor.qrlogin import QrCodes
from gowa_py.supervisor.runner import SessionRunner
from gowa_py.supervisor.sequencer import EventSequencer

log = logging.getLogger("gowa.supervisor")

Listener = Callable[[EventBody], Awaitable[None]]
Requester = Callable[[str, p.Command, float], Awaitable[p.Result]]


class EventDispatch:
    def __init__(
        self,
        registry: RegistryStorage,
        runners: Mapping[str, SessionRunner],
        locks: LifecycleLocks,
        request: Requester,
        touch: Callable[[str], None],
        retry_interval: float,
    ) -> None:
        self._registry = registry
        self._runners = runners
        self._locks = locks
        self._request = request
        self._touch = touch
        self._listeners: list[Listener] = []
        self._durable: list[Listener] = []
        self._background: set[asyncio.Task[None]] = set()
        #: The QR codes the sessions show now, as their ``session.qr`` events tell.
        self.qr = QrCodes()
        self._sequencer = EventSequencer(
            registry,
            self._fetch_events,
            self._apply,
            self._log_replaced,
            self._worker_pid,
            retry_interval,
        )

    def start(self) -> None:
        self._sequencer.start()

    async def close(self) -> None:
        await self._sequencer.close()

    def forget(self, session_id: str) -> None:
        """The session is deleted: drop what the sequencer keeps for it."""
        self._sequencer.forget(session_id)

    def subscribe(self, listener: Listener, durable: bool = False) -> Callable[[], None]:
        """Get every event. A durable listener (the webhook outbox) must succeed before a
        worker event counts as applied; if it raises, the event is fetched again later."""
        listeners = self._durable if durable else self._listeners
        listeners.append(listener)
        return lambda: listeners.remove(listener)

    async def dispatch(self, event: p.Event, strict: bool = False) -> None:
        """Hand ``event`` to the listeners, as one :class:`EventBody` built for all of them;
        ``strict`` lets a durable listener's failure propagate (worker events, which can be
        fetched again), else it is logged."""
        runner = self._runners.get(event.session_id)
        self.qr.observe(event, runner.started_at if runner is not None else None)
        body = EventBody(event, self._registry.get(event.session_id))
        for listener in list(self._durable):
            try:
                await listener(body)
            except Exception:
                if strict:
                    raise
                log.exception("durable listener failed on %s", event.name)
        for listener in list(self._listeners):
            try:
                await listener(body)
            except Exception:
                log.exception("event listener failed on %s", event.name)

    async def publish_status(
        self, session_id: str, status: p.SessionState, error: str | None
    ) -> None:
        previous = self._registry.get(session_id)
        try:
            self._registry.set_status(session_id, status, error)
        except LeaseLost as exc:
            log.warning("[%s] status %s not published: %s", session_id, status.value, exc)
            return
        runner = self._runners.get(session_id)
        payload: dict[str, Any] = {
            "status": status.value,
            "previous": previous.status.value if previous else None,
            "error": error,
            # Stopped for being idle: the next request starts it again by itself.
            "hibernating": status is p.SessionState.STOPPED
            and runner is not None
            and runner.hibernated,
        }
        await self.dispatch(_gateway_event(session_id, p.SESSION_STATUS, payload))

    async def set_status(self, session_id: str, status: p.SessionState, error: str | None) -> None:
        if session_id in self._runners and self._registry.get(session_id) is not None:
            await self.publish_status(session_id, status, error)

    async def notice(self, session_id: str, name: str, payload: dict[str, Any]) -> None:
        await self.dispatch(_gateway_event(session_id, name, payload))

    async def on_hello(self, hello: p.Hello) -> None:
        runner = self._runners.get(hello.session_id)
        if runner is None:
            return
        runner.hello(hello)
        if self._registry.get(hello.session_id) is None or runner.pid != hello.pid:
            return
        try:
            await self._sequencer.hello(hello.session_id, hello.pid, hello.event_log)
        except LeaseLost as exc:
            log.warning("[%s] worker's events not taken: %s", hello.session_id, exc)

    def _worker_pid(self, session_id: str) -> int | None:
        runner = self._runners.get(session_id)
        return None if runner is None else runner.pid

    async def _fetch_events(self, session_id: str, after_seq: int, limit: int) -> Sequence[p.Event]:
        command = p.ReplayEvents(after_seq=after_seq, limit=limit)
        result = await self._request(session_id, command, 5.0)
        return result.events if isinstance(result, p.Events) else []

    async def _log_replaced(self, session_id: str, reason: str) -> None:
        await self.dispatch(_gateway_event(session_id, p.EVENT_LOG_REPLACED, {"reason": reason}))

    async def on_event(self, event: p.Event) -> None:
        if event.session_id not in self._runners:
            return
        if not event.name.startswith(("log", "session.")):
            self._touch(event.session_id)
        if event.seq == 0:
            await self.dispatch(event)
            return
        await self._sequencer.on_event(event)

    async def _park(self, session_id: str, reason: str) -> None:
        """Stop a session that should not run on (its QR codes expired, WhatsApp wants a
        passkey), keeping why."""
        with contextlib.suppress(SessionBusy, SessionMissing, LeaseLost):
            async with self._locks.hold(session_id) as runner:
                self._registry.set_desired(session_id, "stopped", fenced=True)
                await runner.stop(p.SessionState.STOPPED, reason)

    async def _apply(self, event: p.Event) -> None:
        """Apply a worker's event; one its node may no longer write about (the session's
        lease is another node's: :class:`LeaseLost`) is dropped, neither written nor
        handed on: the new holder's worker serves the same event log and applies it."""
        try:
            await self._apply_held(event)
        except LeaseLost as exc:
            log.warning("[%s] event %s dropped: %s", event.session_id, event.name, exc)

    async def _apply_held(self, event: p.Event) -> None:
        session_id = event.session_id
        lost: p.Event | None = None
        change = p.read_payload(event, p.StatusPayload) if event.name == p.SESSION_STATUS else None
        if change is not None:
            record = self._registry.get(session_id)
            error = change.error
            if change.status is p.SessionState.SCAN_QR_CODE and record and record.me:
                event, lost = self._login_lost(event, record.me)
                error = lost.payload["message"]
            self._registry.set_status(session_id, change.status, error, event.timestamp)
            if change.me is not None and change.me.jid:
                self._registry.set_me(
                    session_id, p.Me(jid=change.me.jid, push_name=change.me.push_name)
                )
            elif change.status is p.SessionState.LOGGED_OUT:
                self._registry.set_me(session_id, None)
        await self.dispatch(event, strict=True)
        if lost is not None:
            await self.dispatch(lost)
        active = event.name.startswith("message") or event.name == "session.pair"
        self._registry.set_event_seq(session_id, event.seq, event.timestamp if active else None)
        if event.name in p.PARKING_EVENTS:
            parking = p.read_payload(event, p.ParkingPayload)
            message = parking.message if parking else f"stopped on {event.name}"
            task = asyncio.create_task(self._park(session_id, message))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _login_lost(self, event: p.Event, me: p.Me) -> tuple[p.Event, p.Event]:
        """A logged-in session asks for a QR code: its keys are gone from whatsmeow.db
        (deleted, truncated, an older copy restored) without a logout or an unlink, which
        would have said so. Forget the account and say why, instead of showing the old
        JID beside a QR code; returns the status event with the reason, and a
        ``session.login_lost`` event."""
        message = (
            f"the login of {me.jid} was lost: whatsmeow.db no longer holds this device "
            "(deleted, truncated or replaced by an older copy?); scan a new QR code to link "
            "the session again"
        )
        log.error("[%s] %s", event.session_id, message)
        self._registry.set_me(event.session_id, None)
        status = msgspec.structs.replace(event, payload={**event.payload, "error": message})
        notice = _gateway_event(
            event.session_id, "session.login_lost", {"jid": me.jid, "message": message}
        )
        return status, notice


def _gateway_event(session_id: str, name: str, payload: dict[str, Any]) -> p.Event:
    return p.Event(
        id=uuid.uuid4().hex,
        session_id=session_id,
        name=name,
        timestamp=time.time(),
        payload=payload,
    )
