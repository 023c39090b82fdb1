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
from pathlib import Path

import aiohttp
import msgspec
from yarl import URL

from gowa_py import __version__
from gowa_py import protocol as p
from gowa_py.backoff import backoff_delay
from gowa_py.config import Settings
from gowa_py.envelope import envelope
from gowa_py.models import Webhook
from gowa_py.registry import Registry, SessionRecord
from gowa_py.webhooks import signing
from gowa_py.webhooks.outbox import Delivery, Outbox
from gowa_py.webhooks.policy import BlockedTarget, PolicyResolver, TargetPolicy, parse_networks

log = logging.getLogger("gowa.webhooks")

# Live-only events that are never worth a webhook.
NOT_DELIVERED = frozenset({"log", "session.deleted"})
BATCH = 64
PRUNE_EVERY_S = 600
_encoder = msgspec.json.Encoder()


class WebhookDeliverer:
    def __init__(self, settings: Settings, registry: Registry, sessions_dir: Path) -> None:
        self._settings = settings
        self._registry = registry
        self._sessions_dir = sessions_dir
        self._global = _global_webhooks(settings)
        self.policy = TargetPolicy(
            parse_networks(settings.webhook_allow_networks),
            parse_networks(settings.webhook_deny_networks),
        )
        self._outboxes: dict[str, Outbox] = {}
        self._inflight: dict[str, set[str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)
        self._http: aiohttp.ClientSession | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._closing = False

    # ------------------------------------------------------------- outboxes

    def outbox(self, session_id: str) -> Outbox:
        outbox = self._outboxes.get(session_id)
        if outbox is None:
            folder = self._sessions_dir / session_id
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            outbox = self._outboxes[session_id] = Outbox(folder / "chats.db")
        return outbox

    def forget(self, session_id: str) -> None:
        outbox = self._outboxes.pop(session_id, None)
        if outbox is not None:
            outbox.close()

    # -------------------------------------------------------------- enqueue

    def targets(self, record: SessionRecord, event: str) -> list[tuple[str, str]]:
        """(url, secret) of each webhook that wants ``event``: the session's, else global."""
        hooks = record.config.webhooks or self._global
        wanted = event.lower()
        return [
            (hook.url, hook.secret or self._settings.webhook_secret)
            for hook in hooks
            if not hook.events or wanted in {e.lower() for e in hook.events}
        ]

    async def on_event(self, event: p.Event) -> None:
        """Durable listener: raising here keeps the event unapplied, so it is retried."""
        if event.name in NOT_DELIVERED:
            if event.name == "session.deleted":
                self.forget(event.session_id)
            return
        record = self._registry.get(event.session_id)
        if record is None:
            return
        targets = self.targets(record, event.name)
        if not targets:
            return
        device_id = record.me.jid if record.me else ""
        body = _encoder.encode(envelope(event, device_id))
        if self.outbox(event.session_id).enqueue(event.id, event.name, targets, body):
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------- delivery

    async def start(self) -> None:
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
        last_prune = 0.0
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
        for record in self._registry.all():
            try:
                self.outbox(record.id).prune_delivered(older_than)
            except Exception as exc:
                log.warning("[%s] cannot prune webhook deliveries: %s", record.id, exc)

    def _launch_due(self) -> float | None:
        now = time.time()
        next_due: float | None = None
        for record in self._registry.all():
            try:
                outbox = self.outbox(record.id)
                # Usually known without a query (see Outbox): nothing due, nothing to read.
                due = outbox.next_due_at()
                if due is not None and due <= now:
                    inflight = self._inflight.setdefault(record.id, set())
                    batch = outbox.due(now, BATCH, inflight)
                    for delivery in batch:
                        inflight.add(delivery.id)
                        task = asyncio.create_task(self._deliver(record.id, outbox, delivery))
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
                    if not batch:
                        # All that is due is in flight: its end wakes us. Counting its past
                        # due time would spin this loop for as long as a receiver is slow.
                        continue
            except Exception as exc:
                log.error("[%s] webhook outbox unavailable: %s", record.id, exc)
                continue
            if due is not None and (next_due is None or due < next_due):
                next_due = due
        return next_due

    async def _deliver(self, session_id: str, outbox: Outbox, delivery: Delivery) -> None:
        try:
            async with self._slots:
                status, error = await self._post(delivery)
            self._record(outbox, delivery, status, error)
        finally:
            self._inflight.get(session_id, set()).discard(delivery.id)
            self._wake.set()

    async def _post(self, delivery: Delivery) -> tuple[int | None, str | None]:
        assert self._http is not None
        headers = {
            "Content-Type": "application/json",
            signing.HEADER: signing.sign(delivery.body, delivery.secret),
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
        self, outbox: Outbox, delivery: Delivery, status: int | None, error: str | None
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
    return [Webhook(url=url, secret=settings.webhook_secret, events=events) for url in urls]
