"""At-least-once webhook delivery from the per-session outboxes.

Events are enqueued synchronously (before the gateway counts them as applied) and sent by
one loop: a bounded number of concurrent POSTs, exponential backoff with jitter per
delivery, a retry cap after which a delivery is dead-lettered (and can be redelivered by
hand), and, when a receiver answers again, everything queued for it is sent at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import aiohttp
from yarl import URL

from gowa_py import __version__
from gowa_py import protocol as p
from gowa_py.backoff import backoff_delay
from gowa_py.config import Settings
from gowa_py.eventbody import EventBody
from gowa_py.models import Webhook
from gowa_py.registry import SessionRecord
from gowa_py.storage.interfaces import GatewayStorage, OutboxStorage
from gowa_py.webhooks import signing
from gowa_py.webhooks.outbox import GLOBAL_SECRET, Delivery
from gowa_py.webhooks.policy import BlockedTarget, PolicyResolver, TargetPolicy, parse_networks

log = logging.getLogger("gowa.webhooks")

# Live-only events that are never worth a webhook.
NOT_DELIVERED = frozenset({"log", p.SESSION_DELETED})
BATCH = 64
PRUNE_EVERY_S = 600


class WebhookDeliverer:
    def __init__(self, settings: Settings, storage: GatewayStorage) -> None:
        self._settings = settings
        self._registry = storage.registry
        self._storage = storage
        self._global = _global_webhooks(settings)
        self.policy = TargetPolicy(
            parse_networks(settings.webhook_allow_networks),
            parse_networks(settings.webhook_deny_networks),
        )
        self._outboxes: OrderedDict[str, OutboxStorage] = OrderedDict()
        # Sessions whose outbox was checked for copies of the global secret (see Outbox).
        self._scrubbed: set[str] = set()
        #: Per session with pending deliveries, when the earliest is due (0: look). Only
        #: these outboxes are opened by the delivery loop; the others stay closed.
        self._pending: dict[str, float] = {}
        self._inflight: dict[str, set[str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)
        self._http: aiohttp.ClientSession | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._closing = False
        #: In a cluster, whether this node runs the session: only the deliveries of its
        #: own sessions go out from here (:meth:`adopt` picks up the others' on takeover).
        self.owns: Callable[[str], bool] = lambda _session_id: True

    # ------------------------------------------------------------- outboxes

    def outbox(self, session_id: str) -> OutboxStorage:
        """The session's outbox, opened on demand.

        At most ``webhook_open_outboxes`` stay open (each holds ``chats.db``, its ``-wal``
        and ``-shm``): the least recently used is closed first, so the gateway's file
        descriptors follow the sessions that are busy, not every session it knows. Nobody
        holds an outbox across an ``await``; closing one loses nothing, it is reopened
        when next needed.
        """
        outbox = self._outboxes.get(session_id)
        if outbox is not None:
            self._outboxes.move_to_end(session_id)
            return outbox
        outbox = self._storage.open_outbox(session_id)
        if session_id not in self._scrubbed:
            outbox.forget_secret(self._settings.webhook_secret)
            self._scrubbed.add(session_id)
        self._outboxes[session_id] = outbox
        while len(self._outboxes) > self._settings.webhook_open_outboxes:
            _, oldest = self._outboxes.popitem(last=False)
            oldest.close()
        return outbox

    @property
    def open_outboxes(self) -> int:
        return len(self._outboxes)

    def reopen(self, session_id: str) -> None:
        """The session's ``chats.db`` was replaced (restored from a backup, recreated)
        while its outbox was open: that connection still holds the old file, unlinked,
        and what it wrote would be lost at its close. Carry its pending deliveries into
        the new file and use that one from now on."""
        outbox = self._outboxes.pop(session_id, None)
        if outbox is None:
            return
        try:
            pending = outbox.pending()
        finally:
            outbox.close()
        if pending and self.outbox(session_id).adopt(pending):
            self._pending[session_id] = 0.0
            self._wake.set()

    def adopt(self, session_id: str) -> None:
        """This node has just taken the session over (a cluster): deliver what its
        outbox holds, left there by the node that ran it before."""
        self.forget(session_id)  # an outbox open here knows only what this node wrote
        self._pending[session_id] = 0.0
        self._wake.set()

    def forget(self, session_id: str) -> None:
        self._pending.pop(session_id, None)
        outbox = self._outboxes.pop(session_id, None)
        if outbox is not None:
            outbox.close()

    def _note_due(self, session_id: str, outbox: OutboxStorage) -> float | None:
        """Refresh what the loop knows of the session's earliest pending delivery."""
        due = outbox.next_due_at()
        if due is None:
            self._pending.pop(session_id, None)
        else:
            self._pending[session_id] = due
        return due

    def _find_pending(self) -> None:
        """At start, which sessions have deliveries pending (one outbox open at a time):
        a stopped session's deliveries go out like any other. Delivered rows past the
        retention are pruned on the way."""
        older_than = time.time() - self._settings.webhook_retention_days * 86400
        for record in self._registry.all():
            if not self.owns(record.id):
                continue
            try:
                outbox = self._storage.existing_outbox(record.id)
            except Exception as exc:
                log.error("[%s] webhook outbox unavailable: %s", record.id, exc)
                continue
            if outbox is None:
                continue
            try:
                outbox.prune_delivered(older_than)
                due = outbox.next_due_at()
            except Exception as exc:
                log.error("[%s] webhook outbox unavailable: %s", record.id, exc)
                continue
            finally:
                outbox.close()
            if due is not None:
                self._pending[record.id] = min(due, self._pending.get(record.id, due))

    # -------------------------------------------------------------- enqueue

    def targets(self, record: SessionRecord, event: str) -> list[tuple[str, str]]:
        """(url, secret) of each webhook that wants ``event``: the session's, else global.

        A hook without a secret of its own is signed with the gateway's webhook_secret,
        referred to as GLOBAL_SECRET so that it never lands in a session's file.
        """
        hooks = record.config.webhooks or self._global
        wanted = event.lower()
        return [
            (hook.url, hook.secret or GLOBAL_SECRET)
            for hook in hooks
            if not hook.events or wanted in {e.lower() for e in hook.events}
        ]

    async def on_event(self, body: EventBody) -> None:
        """Durable listener: raising here keeps the event unapplied, so it is retried."""
        event = body.event
        if event.name == p.EVENT_LOG_REPLACED:
            self.reopen(event.session_id)
        if event.name in NOT_DELIVERED:
            if event.name == p.SESSION_DELETED:
                self.forget(event.session_id)
            return
        record = body.record
        if record is None:
            return
        targets = self.targets(record, event.name)
        if not targets:
            return
        if self.outbox(event.session_id).enqueue(event.id, event.name, targets, body.encoded):
            self._pending[event.session_id] = 0.0
            self._wake.set()

    def redeliver(self, session_id: str, delivery_id: str) -> Delivery | None:
        """Queue a delivery again (dead or not); None if the session has no such delivery."""
        outbox = self.outbox(session_id)
        if not outbox.redeliver(delivery_id):
            return None
        self._pending[session_id] = 0.0
        self._wake.set()
        return outbox.get(delivery_id)

    # ------------------------------------------------------------- delivery

    async def start(self) -> None:
        await asyncio.to_thread(self._find_pending)
        connector = aiohttp.TCPConnector(resolver=PolicyResolver(self.policy), limit=0)
        self._http = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._settings.webhook_timeout),
            headers={"User-Agent": f"gowa-py/{__version__}"},
        )
        self._loop_task = asyncio.create_task(self._run(), name="webhooks")

    async def close(self, drain: float = 10.0) -> None:
        """Stop taking new deliveries, let those in flight finish for ``drain`` s."""
        self._closing = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=drain)
        for task in set(self._tasks):
            task.cancel()
        if self._http is not None:
            await self._http.close()
        for session_id in list(self._outboxes):
            self.forget(session_id)

    async def _run(self) -> None:
        last_prune = time.time()
        while not self._closing:
            if time.time() - last_prune > PRUNE_EVERY_S:
                last_prune = time.time()
                self._prune(last_prune - self._settings.webhook_retention_days * 86400)
            next_due = self._launch_due()
            delay = 1.0 if next_due is None else min(1.0, max(0.0, next_due - time.time()))
            self._wake.clear()
            # Not wait_for: on 3.11 it drops a cancellation that meets a wake-up (the end of
            # a delivery), and close() then waited for this loop forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _prune(self, older_than: float) -> None:
        """Delivered rows only accrue in open outboxes (the others were pruned at start)."""
        for session_id, outbox in list(self._outboxes.items()):
            try:
                outbox.prune_delivered(older_than)
            except Exception as exc:
                log.warning("[%s] cannot prune webhook deliveries: %s", session_id, exc)

    def _launch_due(self) -> float | None:
        now = time.time()
        next_due: float | None = None
        for session_id, known in list(self._pending.items()):
            if self._inflight.get(session_id):
                # Its deliveries' ends wake this loop and say what is due next; looking
                # now would reopen its outbox on every pass while they wait for a slot.
                continue
            if not self.owns(session_id):
                self.forget(session_id)  # its node delivers them; adopt() if it comes here
                continue
            if known > now:
                due: float | None = known
            elif self._registry.get(session_id) is None:
                self.forget(session_id)
                continue
            else:
                try:
                    outbox = self.outbox(session_id)
                    # Usually known without a query (see Outbox): nothing due, nothing to read.
                    due = self._note_due(session_id, outbox)
                    if due is not None and due <= now:
                        inflight = self._inflight.setdefault(session_id, set())
                        batch = outbox.due(now, BATCH, inflight)
                        for delivery in batch:
                            inflight.add(delivery.id)
                            task = asyncio.create_task(self._deliver(session_id, delivery))
                            self._tasks.add(task)
                            task.add_done_callback(self._tasks.discard)
                        if not batch:
                            # All that is due is in flight: its end wakes us. Counting its
                            # past due time would spin this loop while a receiver is slow.
                            continue
                except Exception as exc:
                    log.error("[%s] webhook outbox unavailable: %s", session_id, exc)
                    continue
            if due is not None and (next_due is None or due < next_due):
                next_due = due
        return next_due

    async def _deliver(self, session_id: str, delivery: Delivery) -> None:
        try:
            async with self._slots:
                status, error = await self._post(delivery)
            if self._registry.get(session_id) is None:
                return  # deleted meanwhile, with its outbox
            # Opened again here: it may have been closed while the POST was on its way.
            outbox = self.outbox(session_id)
            self._record(outbox, delivery, status, error)
            self._note_due(session_id, outbox)
        finally:
            self._inflight.get(session_id, set()).discard(delivery.id)
            self._wake.set()

    async def _post(self, delivery: Delivery) -> tuple[int | None, str | None]:
        assert self._http is not None
        headers = {
            "Content-Type": "application/json",
            signing.HEADER: signing.sign(
                delivery.body, delivery.secret or self._settings.webhook_secret
            ),
            "X-Webhook-Event": delivery.event,
            "X-Webhook-Delivery": delivery.id,
            "X-Event-Id": delivery.event_id,
        }
        try:
            self.policy.check_literal(URL(delivery.url).host or "")
            async with self._http.post(
                delivery.url, data=delivery.body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return response.status, None
                return response.status, f"HTTP {response.status}"
        except BlockedTarget as exc:
            return None, f"blocked: {exc}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        except ValueError as exc:  # a URL no retry can fix (e.g. a host that is not IDNA)
            return None, f"blocked: invalid URL: {exc}"[:500]

    def _record(
        self, outbox: OutboxStorage, delivery: Delivery, status: int | None, error: str | None
    ) -> None:
        if error is None:
            outbox.mark_delivered(delivery.id, status or 200)
            outbox.hurry(delivery.url, time.time())
            return
        attempts = delivery.attempts + 1
        blocked = error.startswith("blocked:")
        if blocked or attempts >= self._settings.webhook_max_attempts:
            log.warning(
                "webhook %s to %s dead after %d attempt(s): %s",
                delivery.id,
                delivery.url,
                attempts,
                error,
            )
            outbox.mark_failed(delivery.id, status, error, None)
            return
        delay = backoff_delay(
            attempts - 1, base=1.0, cap=self._settings.webhook_backoff_cap, jitter=0.2
        )
        outbox.mark_failed(delivery.id, status, error, time.time() + delay)


def _global_webhooks(settings: Settings) -> list[Webhook]:
    urls = [u.strip() for u in (settings.webhook_url or "").split(",") if u.strip()]
    events = [e.strip() for e in (settings.webhook_events or "").split(",") if e.strip()]
    return [Webhook(url=url, events=events) for url in urls]
