"""Fault-injection rig: a real sandbox, gateway, workers and webhook receiver, and a message
stream whose every message must arrive (WebSocket ``message`` event + signed webhook)."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import SUBPROCESS_WORKERS, EventWatcher, new_phone, pair
from tests.procs import Gateway, wait_until
from tests.receiver import WebhookReceiver
from tests.sim.harness import SandboxProcess

SECRET = "fault-secret"
ENV = {
    **SUBPROCESS_WORKERS,
    "GOWA_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
    "GOWA_WEBHOOK_BACKOFF_CAP": "4",
    "GOWA_COMMAND_TIMEOUT": "5",
    "GOWA_RATE_LIMIT": "1000",  # the streams here are faster than one normal client
}
# Statuses a client retries: worker restarting (503), WhatsApp side failing (502),
# session reconnecting (409 SESSION_NOT_CONNECTED) or the gateway itself down (None).
RETRYABLE = {None, 409, 502, 503}
_phones = iter(range(1000, 10000))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    sim = SandboxProcess(tmp_path_factory.mktemp("sim"))
    sim.start()
    yield sim
    with contextlib.suppress(Exception):
        sim.api("POST", "/sim/faults", {"delay_ms": 0})
    sim.stop()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver(SECRET).start()
    yield hook
    hook.close()


@dataclass
class Pair:
    sender: str
    receiver: str
    receiver_phone: str


@dataclass
class Sent:
    """What the client saw: accepted message ids (200) and every status it got."""

    ids: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (rx session, text)
    texts: set[str] = field(default_factory=set)  # every text attempted, accepted or not
    statuses: Counter = field(default_factory=Counter)
    retried: int = 0


class Rig:
    """Sessions paired in the sandbox, a stream of messages, and the checks that nothing
    was lost or duplicated. ``self.gateway`` may be replaced (gateway restarts)."""

    def __init__(
        self,
        sandbox: SandboxProcess,
        receiver: WebhookReceiver,
        gateway_factory: Any,
        tmp_path: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.receiver = receiver
        self._factory = gateway_factory
        self.env = {**ENV, **(env or {})}
        self.data_dir = tmp_path / "data"
        self.gateway: Gateway = self.start_gateway()
        self.pairs: list[Pair] = []
        self.watchers: list[EventWatcher] = [self.watch()]
        self.sent = Sent()
        self._lock = threading.Lock()
        self._done = 0

    # ------------------------------------------------------------- set-up

    def start_gateway(self) -> Gateway:
        return self._factory(
            env=self.env, args=["--sandbox", self.sandbox.url], data_dir=self.data_dir
        )

    def restart_gateway(self) -> None:
        self.gateway = self.start_gateway()
        self.watchers.append(self.watch())

    def watch(self) -> EventWatcher:
        return EventWatcher(self.gateway.http.base.replace("http", "ws") + "/api/dashboard/events")

    def add_pairs(self, count: int, before_pair: Any = None) -> list[Pair]:
        for _ in range(count):
            n = next(_phones)
            tx, rx = f"tx{n}", f"rx{n}"
            tx_phone = new_phone(self.sandbox, f"1777{n}01", "Sender")
            rx_phone = new_phone(self.sandbox, f"1777{n}02", "Receiver")
            if before_pair is not None:
                before_pair(rx)
            pair(self.gateway, self.sandbox, tx, tx_phone)
            pair(self.gateway, self.sandbox, rx, rx_phone)
            hook = {"url": self.receiver.url, "secret": SECRET, "events": ["message"]}
            status, body = self.gateway.http.call(
                "PATCH", f"/api/sessions/{rx}", {"config": {"webhooks": [hook]}}
            )
            assert status == 200, body
            self.pairs.append(Pair(tx, rx, rx_phone))
        return self.pairs

    def sessions(self) -> list[str]:
        return [s for p in self.pairs for s in (p.sender, p.receiver)]

    def worker_pid(self, session_id: str) -> int:
        return self.gateway.wait_pid(session_id, timeout=30)

    # ------------------------------------------------------------ sending

    def send(self, target: Pair, text: str, deadline_s: float = 90) -> str:
        """Send like a client does: retry on 409/502/503/connection errors until accepted."""
        deadline = time.monotonic() + deadline_s
        body = {"phone": target.receiver_phone, "message": text}
        with self._lock:
            self.sent.texts.add(text)
        attempt = 0
        while True:
            try:
                status, reply = self.gateway.http.post(
                    f"/api/{target.sender}/send/message", body, timeout=20
                )
            except OSError:
                status, reply = None, None
            with self._lock:
                self.sent.statuses[status] += 1
                self.sent.retried += attempt > 0
            if status == 200:
                message_id = reply["results"]["message_id"]
                with self._lock:
                    self.sent.ids[message_id] = (target.receiver, text)
                    self._done += 1
                return message_id
            assert status in RETRYABLE, f"send of {text!r} got {status}: {reply}"
            assert time.monotonic() < deadline, f"{text!r} not accepted in {deadline_s} s"
            attempt += 1
            time.sleep(0.3)

    @contextlib.contextmanager
    def stream(self, count: int, tag: str, rate: float = 25.0, threads: int = 4) -> Iterator[None]:
        """Send ``count`` messages (round-robin over the pairs, about ``rate`` per second)
        in the background while the body injects faults; waits for every send on exit."""
        self._done = 0
        pool = ThreadPoolExecutor(threads)

        def one(n: int) -> str:
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
            return self.send(self.pairs[n % len(self.pairs)], f"{tag} {n}")

        start = time.monotonic()
        futures = [pool.submit(one, n) for n in range(count)]
        try:
            yield
            for future in futures:
                future.result()
        finally:
            pool.shutdown(cancel_futures=True)

    def progress(self, at_least: int, timeout: float = 60) -> None:
        wait_until(lambda: self._done >= at_least, timeout, what=f"{at_least} messages sent")

    # ------------------------------------------------------------- checks

    def ws_messages(self) -> list[dict[str, Any]]:
        return [
            event
            for watcher in self.watchers
            for event in watcher.find(lambda e: e["event"] == "message")
        ]

    def lost(self) -> dict[str, str]:
        """Message ids a receiver reported as ``message.lost`` (see workers/lost.py), by
        session: decrypted by a worker that was killed before it could record them."""
        return {
            event["payload"]["id"]: event["session_id"]
            for watcher in self.watchers
            for event in watcher.find(lambda e: e["event"] == "message.lost")
        }

    def hooks(self) -> list[dict[str, Any]]:
        items = self.receiver.items("message")
        assert all(item.signature_ok for item in items), "a webhook had a bad signature"
        return [item.body for item in items]

    def assert_nothing_lost(
        self, timeout: float = 60, redelivery_ok: bool = False, killed: frozenset[str] = frozenset()
    ) -> dict:
        """Every accepted message reached its receiver as one ``message`` event (live) and
        one webhook (by envelope id). Repeats of the same envelope id are allowed only with
        ``redelivery_ok`` (a gateway that died before recording what it had applied or
        delivered). The one exception to arrival: a message a receiver in ``killed``
        reported as ``message.lost`` (killed between whatsmeow's decryption and our
        record; neonize offers no way to close that window). Returns figures."""

        def reported_lost() -> dict[str, str]:
            # Read again on every pass: a restarted receiver reports a loss only after the
            # server's second copy is refused and a grace period has passed.
            return {m: rx for m, rx in self.lost().items() if rx in killed}

        def missing_from(events: list[dict[str, Any]]) -> set[str]:
            lost = reported_lost()
            arrived = {(e["payload"]["id"], e["session_id"]) for e in events}
            return {
                mid
                for mid, (rx, _) in self.sent.ids.items()
                if mid not in lost and (mid, rx) not in arrived
            }

        for what, source in (("a live event", self.ws_messages), ("a webhook", self.hooks)):
            deadline = time.monotonic() + timeout
            while (missing := missing_from(source())) and time.monotonic() < deadline:
                time.sleep(0.5)
            gone = {m: self.sent.ids[m] for m in sorted(missing)}
            assert not missing, (
                f"{len(missing)} accepted message(s) never arrived as {what}: {gone}"
            )
        lost = reported_lost()
        strays = {m: rx for m, rx in self.lost().items() if rx not in killed}
        assert not strays, f"message.lost from receivers that were never killed: {strays}"
        expected = {mid: rx for mid, (rx, _) in self.sent.ids.items() if mid not in lost}
        events, hooks = self.ws_messages(), self.hooks()
        for name, items in (("live", events), ("webhook", hooks)):
            # A retried send may have reached WhatsApp before its worker died: its text can
            # arrive under an id the client never saw, but never a text nobody sent.
            strangers = {e["payload"].get("body") for e in items} - self.sent.texts
            assert not strangers, f"{name} events with unknown texts: {sorted(strangers)[:5]}"
            by_message: dict[str, set[str]] = defaultdict(set)
            for e in items:
                by_message[e["payload"]["id"]].add(e["id"])
            twice = {m: ids for m, ids in by_message.items() if len(ids) > 1}
            assert not twice, f"{name}: {len(twice)} message(s) emitted as several events"
        live_ids = Counter(e["id"] for e in events)
        if not redelivery_ok:
            assert max(live_ids.values()) == 1, "a live event was published twice"
        hook_ids = Counter(h["id"] for h in hooks)
        repeats = sum(hook_ids.values()) - len(hook_ids)
        if not redelivery_ok:
            assert repeats == 0, f"{repeats} webhook(s) delivered twice without a failure"
        return {
            "accepted": len(expected),
            "attempts": sum(self.sent.statuses.values()),
            "statuses": dict(self.sent.statuses),
            "webhook_repeats": repeats,
            "unacknowledged_arrivals": len({e["payload"]["id"] for e in events} - expected.keys()),
            "lost_in_crash_window": len(lost),
        }

    def close(self) -> None:
        for watcher in self.watchers:
            watcher.close()


@pytest.fixture
def rig_factory(sandbox, receiver, gateway_factory, tmp_path) -> Iterator[Any]:
    rigs: list[Rig] = []

    def make(env: dict[str, str] | None = None) -> Rig:
        rig = Rig(sandbox, receiver, gateway_factory, tmp_path, env)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A fresh seed per run, printed, so a failing fault schedule can be replayed."""
    seed = random.randrange(1 << 30)
    print(f"fault seed for {request.node.name}: {seed}")
    return random.Random(seed)
