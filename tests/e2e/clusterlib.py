"""Gateway nodes of one cluster for the end-to-end tests: starting them with short lease
timings, asking one node about itself, pairing many sessions at once, and a stream of
sandbox messages whose every one is then looked for in chat storage and the webhooks."""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.e2e.conftest import WEBHOOK_SECRET, pair
from tests.procs import Gateway, Http
from tests.receiver import WebhookReceiver
from tests.sim.harness import SandboxProcess


def leases(ttl: float, renew_interval: float, margin: float) -> dict[str, str]:
    """A node's lease timings (the gateway checks 2 × renew_interval < ttl − margin)."""
    return {
        "GOWA_LEASE_TTL": str(ttl),
        "GOWA_LEASE_RENEW_INTERVAL": str(renew_interval),
        "GOWA_LEASE_MARGIN": str(margin),
    }


#: Short lease timings for test speed: 2 × 1 < 6 − 2.
TTL = 6.0
MARGIN = 2.0
LEASES = leases(TTL, 1, MARGIN)

#: Marks a request as forwarded already: the node answers it itself.
LOCAL = {"X-Gowa-Forwarded-By": "test"}


def node(
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
    sandbox: SandboxProcess,
    database_url: str,
    receiver: WebhookReceiver,
    name: str,
    timings: dict[str, str] = LEASES,
) -> Gateway:
    """A cluster node named ``name`` on the database, delivering message webhooks."""
    env = {
        "GOWA_DATABASE_URL": database_url,
        "GOWA_NODE_ID": name,
        "GOWA_WEBHOOK_URL": receiver.url,
        "GOWA_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GOWA_WEBHOOK_EVENTS": "message",
        "GOWA_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
        **timings,
    }
    return gateway_factory(
        env=env, data_dir=tmp_path / name / "data", args=["--sandbox", sandbox.url]
    )


def replaced(sandbox: SandboxProcess) -> int:
    """How often the sandbox saw a device connect while it was connected already."""
    status, body = sandbox.api("GET", "/sim/healthz")
    assert status == 200, body
    return body["replaced"]


def online(sandbox: SandboxProcess, phone: str) -> bool:
    status, body = sandbox.api("GET", f"/sim/phones/{phone}")
    assert status == 200, body
    return any(device["connected"] for device in body["devices"] if device["device"])


def local(gateway: Gateway, session_id: str) -> dict[str, Any]:
    """The session as this node itself sees it (its worker, if it runs the session)."""
    status, body = gateway.http.call("GET", f"/api/sessions/{session_id}", headers=LOCAL)
    assert status == 200, body
    return body["results"]


def pinned(gateway: Gateway) -> Gateway:
    """The gateway, every request to it marked as forwarded (its own headers kept, an API
    key among them): it serves them itself."""
    view = copy.copy(gateway)
    view.http = Http(gateway.http.base, {**gateway.http.headers, **LOCAL})
    return view


def worker(gateway: Gateway, session_id: str) -> int | None:
    return local(gateway, session_id)["worker"]["pid"]


def running_here(gateway: Gateway, session_id: str) -> bool:
    session = local(gateway, session_id)
    return session["status"] == "CONNECTED" and session["worker"]["pid"] is not None


def where(nodes: dict[str, Gateway], sessions: list[str]) -> dict[str, str]:
    """Which node runs each session (CONNECTED with a worker), asking each node itself;
    a session two nodes run at once fails the test."""
    found: dict[str, str] = {}
    for session_id in sessions:
        for name, gateway in nodes.items():
            if running_here(gateway, session_id):
                assert session_id not in found, f"{session_id} on {found[session_id]} and {name}"
                found[session_id] = name
    return found


def wait_running(nodes: dict[str, Gateway], sessions: list[str], timeout: float) -> None:
    """Until the nodes run every one of the sessions; else fail with how each node sees
    each session that is not running."""
    deadline = time.monotonic() + timeout
    while missing := sorted(set(sessions) - set(where(nodes, sessions))):
        if time.monotonic() > deadline:
            seen = {
                (sid, name): (view["status"], view["worker"]["pid"], view["node"])
                for sid in missing
                for name, gateway in nodes.items()
                for view in [local(gateway, sid)]
            }
            raise AssertionError(f"not running after {timeout} s: {seen}")
        time.sleep(0.5)


def webhooks(receiver: WebhookReceiver, session_id: str, text: str) -> int:
    """How many times the receiver got the message event of ``text`` for the session."""
    return sum(
        1
        for item in receiver.items("message")
        if item.body["session_id"] == session_id and text in json.dumps(item.body["payload"])
    )


def history(gateway: Gateway, session_id: str, chat: str) -> list[str]:
    """The texts of the session's chat with the phone ``chat``, from its chat storage."""
    status, body = gateway.http.get(
        f"/api/{session_id}/chat/{chat}@s.whatsapp.net/messages?limit=1000"
    )
    assert status == 200, body
    return [item["content"] for item in body["results"]["data"]]


def pair_all(placed: dict[str, tuple[Gateway, str]], sandbox: SandboxProcess) -> None:
    """Pair every session on its node (asked as if forwarded there), a few at a time."""
    with ThreadPoolExecutor(5) as pool:
        done = [
            pool.submit(pair, pinned(gateway), sandbox, session_id, phone)
            for session_id, (gateway, phone) in placed.items()
        ]
        for future in done:
            future.result()


class MessageLoad:
    """Sandbox phones sending to sessions' phones, round robin, in a thread, until
    stopped (or paused): each text is unique, so every one can be looked for exactly once."""

    def __init__(
        self, sandbox: SandboxProcess, sender: str, targets: dict[str, str], interval: float
    ) -> None:
        """``targets``: session id → its phone; ``interval``: seconds between sends."""
        self.sandbox = sandbox
        self.sender = sender
        self.targets = targets
        self.interval = interval
        #: (session id, text) of every message the sandbox accepted.
        self.sent: list[tuple[str, str]] = []
        self.failed: list[Any] = []
        self._stop = threading.Event()
        self._go = threading.Event()
        self._go.set()
        self._sending = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> MessageLoad:
        self._thread.start()
        return self

    def _run(self) -> None:
        counter = itertools.count()
        for session_id in itertools.cycle(self.targets):
            self._go.wait()
            if self._stop.is_set():
                return
            with self._sending:
                if not self._go.is_set():
                    continue  # paused meanwhile
                text = f"load {session_id} #{next(counter):05d}."
                status, body = self.sandbox.api(
                    "POST",
                    f"/sim/phones/{self.sender}/send",
                    {"to": self.targets[session_id], "text": text},
                )
                if status == 200:
                    self.sent.append((session_id, text))
                else:
                    self.failed.append(body)
            time.sleep(self.interval)

    def pause(self) -> None:
        """Send nothing more until :meth:`resume`; returns once the send under way is done."""
        self._go.clear()
        with self._sending:
            pass

    def resume(self) -> None:
        self._go.set()

    def stop(self) -> list[tuple[str, str]]:
        self._stop.set()
        self._go.set()
        self._thread.join(30)
        assert not self.failed, self.failed[:3]
        return list(self.sent)

    def missing(self, gateway: Gateway, receiver: WebhookReceiver) -> list[str]:
        """What went wrong with the messages sent: each must be in its session's chat
        storage once and have reached the webhook receiver at least once."""
        wrong = []
        by_session: dict[str, list[str]] = {}
        for session_id, text in self.sent:
            by_session.setdefault(session_id, []).append(text)
        hooks: dict[str, list[str]] = {}
        for item in receiver.items("message"):
            hooks.setdefault(item.body["session_id"], []).append(json.dumps(item.body["payload"]))
        for session_id, texts in by_session.items():
            stored = Counter(history(gateway, session_id, self.sender))
            delivered = "\n".join(hooks.get(session_id, []))
            wrong += [f"{t!r} stored {stored[t]} times" for t in texts if stored[t] != 1]
            wrong += [f"{t!r}: no webhook" for t in texts if t not in delivered]
        return wrong

    def wait_delivered(self, gateway: Gateway, receiver: WebhookReceiver, timeout: float) -> None:
        """Until :meth:`missing` finds nothing wrong; else fail naming what is."""
        deadline = time.monotonic() + timeout
        while wrong := self.missing(gateway, receiver):
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(wrong)} of {len(self.sent)} messages: {wrong[:10]}")
            time.sleep(1)
