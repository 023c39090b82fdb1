"""Resource exhaustion against a real ``gowa serve``: file descriptors, the session cap.

The gateway must stay healthy with far more sessions than it has descriptors, because
only busy sessions hold any; it lifts its soft ``RLIMIT_NOFILE`` to the hard one; and no
route creates a session beyond ``max_sessions``.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.procs import Gateway, wait_until
from tests.receiver import WebhookReceiver

pytestmark = pytest.mark.integration

SECRET = "capacity-secret"


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _nofile(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-file limit in /proc/<pid>/limits")


def test_a_thousand_sessions_under_a_1024_descriptor_limit(tmp_path):
    """1000 sessions, each with a webhook delivery queued, in a gateway whose soft *and*
    hard limit are 1024 (so raising the soft limit cannot help): it stays healthy and holds
    a bounded number of descriptors while its receiver is down, after a restart, and when
    the receiver is back every stopped session's delivery goes out."""
    receiver = WebhookReceiver(SECRET)  # down until the gateway has restarted
    env = {
        "GOWA_WEBHOOK_URL": receiver.url,
        "GOWA_WEBHOOK_SECRET": SECRET,
        "GOWA_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
        "GOWA_MAX_SESSIONS": "1000",
        "GOWA_LOG_LEVEL": "WARNING",
        # Retries go on failing while the sessions are created (minutes on a loaded
        # machine), and the default cap lets a retry wait 5 min: past the wait below.
        "GOWA_WEBHOOK_BACKOFF_CAP": "20",
    }
    gateway = Gateway(tmp_path / "data", env=env, nofile=(1024, 1024))
    try:
        gateway.start()
        assert _nofile(gateway.pid) == (1024, 1024)
        ids = [f"c{n:04d}" for n in range(1000)]

        def create(session_id: str) -> int:
            status, body = gateway.http.post(
                "/api/sessions", {"session_id": session_id, "start": False}
            )
            assert status == 201, body
            return status

        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            assert list(pool.map(create, ids)) == [201] * 1000
        created_s = time.monotonic() - started

        status, body = gateway.http.post("/api/sessions", {"session_id": "one-more"})
        assert (status, body["code"]) == (409, "SESSION_LIMIT"), body
        time.sleep(3)  # a round of failed attempts on every outbox
        status, body = gateway.http.get("/healthz", timeout=5)
        assert status == 200, body
        retrying_fds = _open_fds(gateway.pid)

        # A restart finds the pending deliveries in outboxes it does not keep open.
        gateway.stop()
        gateway = Gateway(tmp_path / "data", env=env, nofile=(1024, 1024))
        restarted = time.monotonic()
        gateway.start(timeout=60)
        restart_s = time.monotonic() - restarted
        receiver.start()

        def delivered() -> set[str]:
            return {item.body["session_id"] for item in receiver.items("session.status")}

        wait_until(lambda: delivered() >= set(ids), 120, interval=0.5, what="1000 deliveries")
        assert all(item.signature_ok for item in receiver.items())

        status, body = gateway.http.get("/healthz", timeout=5)
        assert status == 200, body
        status, body = gateway.http.get("/api/sessions", timeout=30)
        assert status == 200 and len(body["results"]) == 1000
        fds = _open_fds(gateway.pid)
        # The webhook outboxes (64 at most, 3 descriptors each) plus the gateway's own.
        assert max(fds, retrying_fds) < 400, (fds, retrying_fds)
        print(
            f"1000 sessions created in {created_s:.1f} s, restart {restart_s:.1f} s; "
            f"descriptors {retrying_fds} while retrying, {fds} after delivery"
        )
    finally:
        gateway.cleanup()
        receiver.close()


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one(tmp_path):
    gateway = Gateway(tmp_path / "data", nofile=(1024, 4096))
    try:
        gateway.start()
        assert _nofile(gateway.pid) == (4096, 4096)
        assert "open-file limit raised from 1024 to 4096" in gateway.log_path.read_text()
    finally:
        gateway.cleanup()


def test_max_sessions_holds_on_every_route_that_creates_one(gateway_factory):
    gateway = gateway_factory({"GOWA_MAX_SESSIONS": "2"})
    http = gateway.http
    for session_id in ("a", "b"):
        status, body = http.post("/api/sessions", {"session_id": session_id, "start": False})
        assert status == 201, body

    refused = [
        http.post("/api/sessions", {"session_id": "c", "start": False}),
        http.post("/devices", {"device_id": "d"}),
        http.post("/devices", {}),
        http.get("/app/status"),  # GoWA's implicit "default" session
        http.get("/app/login"),
    ]
    for status, body in refused:
        assert status == 409, body
        assert body["code"] == "SESSION_LIMIT" and body["results"] is None, body
        assert "max_sessions" in body["message"]
    status, body = http.get("/api/sessions")
    assert [s["id"] for s in body["results"]] == ["a", "b"]

    # A deleted session frees its place.
    assert http.call("DELETE", "/api/sessions/a")[0] == 200
    status, body = http.post("/devices", {"device_id": "d"})
    assert status == 200, body


def test_a_start_waits_for_memory(gateway_factory):
    """With more memory asked for than the host has, a session is held STARTING, says
    why, and no worker is forked."""
    gateway = gateway_factory({"GOWA_START_MIN_AVAILABLE_MB": str(1 << 30)})
    status, body = gateway.http.post("/api/sessions", {"session_id": "held"})
    assert status == 201, body
    session = gateway.wait_status("held", {"STARTING"})
    wait_until(
        lambda: "waiting for memory" in (gateway.session("held").get("error") or ""),
        10,
        what="the hold's reason",
    )
    time.sleep(1)
    session = gateway.session("held")
    assert session["status"] == "STARTING" and session["worker"]["pid"] is None, session
    assert [p for p in gateway.descendants() if p.name() == "gowa-worker"] == []
    assert "start_min_available_mb" in gateway.log_path.read_text()
