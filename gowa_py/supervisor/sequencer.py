"""Worker events applied exactly once and in order, whatever the socket delivers.

A worker numbers its durable events (``seq``) in its own event log (``chats.db``); the
registry keeps, per session, the last one applied and which log it counts in (the
cursor). Events pushed on the socket can arrive late, twice, or after a gap (the gateway
restarted, a worker's socket dropped some): a duplicate is dropped, a gap is fetched from
the worker's log before the event after it, and what could not be fetched (the worker
was going away, a listener failed) is fetched again by a retry loop of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from gowa_py import protocol as p
from gowa_py.storage.interfaces import RegistryStorage

log = logging.getLogger("gowa.supervisor")

#: Fetch at most ``limit`` durable events after ``after_seq`` (args: session id,
#: after_seq, limit); raises when the worker cannot be asked.
Fetch = Callable[[str, int, int], Awaitable[Sequence[p.Event]]]
#: Apply one event: hand it to the listeners and advance the registry's cursor to its seq.
Apply = Callable[[p.Event], Awaitable[None]]
#: Tell the listeners that a session's log was replaced (args: session id, reason).
Replaced = Callable[[str, str], Awaitable[None]]
#: The pid of the session's live worker, None when it has none.
WorkerPid = Callable[[str], "int | None"]


class EventSequencer:
    """Keeps each session's cursor moving one event at a time, through gaps and logs.

    Events of a worker are taken only once its log was checked against the cursor at its
    hello (:meth:`hello`); until then the catch-up after that check fetches them.
    """

    def __init__(
        self,
        registry: RegistryStorage,
        fetch: Fetch,
        apply: Apply,
        replaced: Replaced,
        worker_pid: WorkerPid,
        retry_interval: float,
        batch: int = 1000,
    ) -> None:
        self._registry = registry
        self._fetch = fetch
        self._apply = apply
        self._replaced = replaced
        self._worker_pid = worker_pid
        self._retry_interval = retry_interval
        self._batch = batch
        self._locks: dict[str, asyncio.Lock] = {}
        #: Per session, the pid of the worker whose log the cursor was checked against.
        self._checked: dict[str, int] = {}
        #: Sessions with events not applied yet, for the retry loop.
        self.stalled: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._retry_loop(), name="event-sequencer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def forget(self, session_id: str) -> None:
        """The session was deleted."""
        self._locks.pop(session_id, None)
        self._checked.pop(session_id, None)
        self.stalled.discard(session_id)

    def _lock(self, session_id: str) -> asyncio.Lock:
        return self._locks.setdefault(session_id, asyncio.Lock())

    async def hello(self, session_id: str, pid: int, identity: p.EventLogIdentity | None) -> None:
        """A new worker serves the session: check its log, then fetch what was missed."""
        if identity is not None:
            await self._follow_log(session_id, identity)
        self._checked[session_id] = pid
        await self.catch_up(session_id)

    async def _follow_log(self, session_id: str, identity: p.EventLogIdentity) -> None:
        """Point the session's cursor into the log its new worker serves.

        Sequence numbers count within one log. A ``chats.db`` deleted, or restored from a
        backup, while the session was stopped numbers its new events from where *it* stood,
        at or below the cursor, and they would be taken for events already applied: lost
        without a trace. Everything after ``start_seq`` was written by the new worker, so
        a log that is not the one the cursor counts in, or that is behind the cursor (same
        log, rewound), is followed from there.
        """
        async with self._lock(session_id):
            record = self._registry.get(session_id)
            if record is None:
                return
            same = record.event_epoch == identity.epoch
            if record.last_event_seq <= identity.start_seq and (same or record.event_epoch is None):
                if not same:  # a registry from before logs had an identity: the same log
                    self._registry.set_event_log(session_id, identity.epoch, record.last_event_seq)
                return
            reason = (
                f"the event log was rewound from {record.last_event_seq} to {identity.start_seq}"
                if same
                else "the event log is a different one"
            )
            log.warning(
                "[%s] %s (chats.db replaced or restored from a backup?); delivering its "
                "events after %d",
                session_id,
                reason,
                identity.start_seq,
            )
            self._registry.set_event_log(session_id, identity.epoch, identity.start_seq)
            await self._replaced(session_id, reason)

    async def on_event(self, event: p.Event) -> None:
        """A durable event (``seq`` > 0) pushed by a worker."""
        session_id = event.session_id
        pid = self._worker_pid(session_id)
        if pid is None or self._checked.get(session_id) != pid:
            return  # its log not checked yet: the catch-up after the hello fetches it
        async with self._lock(session_id):
            record = self._registry.get(session_id)
            if record is None or event.seq <= record.last_event_seq:
                return
            if event.epoch and event.epoch != record.event_epoch:
                return  # from a log the cursor does not count in (a worker since replaced)
            try:
                if event.seq > record.last_event_seq + 1:
                    await self._replay(session_id, record.last_event_seq)
                    record = self._registry.get(session_id)
                    if record is None or event.seq <= record.last_event_seq:
                        return
                    if event.seq > record.last_event_seq + 1:
                        # The gap could not be fetched (the worker is going away): applying
                        # this event would skip the missing ones for good. The catch-up
                        # after the next hello, or the retry loop, fetches them all.
                        self.stalled.add(session_id)
                        return
                await self._apply(event)
            except Exception:
                self.stalled.add(session_id)  # fetched again from the worker's log
                raise

    async def catch_up(self, session_id: str) -> None:
        """Apply every durable event after the cursor that the worker holds."""
        async with self._lock(session_id):
            record = self._registry.get(session_id)
            if record is None:
                return
            try:
                complete = await self._replay(session_id, record.last_event_seq)
            except Exception:
                self.stalled.add(session_id)
                raise
            if complete:
                self.stalled.discard(session_id)
            else:
                self.stalled.add(session_id)

    async def _replay(self, session_id: str, after_seq: int) -> bool:
        """Fetch durable events the gateway has not applied yet, in order; False when the
        worker could not be asked (the caller keeps the session marked for another try)."""
        while True:
            try:
                events = await self._fetch(session_id, after_seq, self._batch)
            except Exception as exc:
                log.warning("[%s] event catch-up failed: %s", session_id, exc)
                return False
            for event in events:
                if event.session_id != session_id:
                    # The reply is this worker's own (gowa_py.ipc checks that); the events
                    # in it must be too.
                    log.warning(
                        "[%s] dropping a replayed event of %r", session_id, event.session_id
                    )
                    continue
                if event.seq > after_seq:
                    await self._apply(event)
                    after_seq = event.seq
            if len(events) < self._batch:
                return True

    async def retry(self) -> None:
        """One round of the retry loop: catch up every stalled session whose worker's log
        was checked (the others are caught up at their worker's hello)."""
        for session_id in list(self.stalled):
            pid = self._worker_pid(session_id)
            if pid is None or self._checked.get(session_id) != pid:
                continue
            try:
                await self.catch_up(session_id)
            except Exception as exc:
                log.warning("[%s] events still not applied: %s", session_id, exc)

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(self._retry_interval)
            await self.retry()
