"""Webhooks end to end: real sandbox, gateway, workers and a real HTTP receiver that fails."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import SUBPROCESS_WORKERS, new_phone, pair
from tests.procs import find_workers, wait_until
from tests.receiver import WebhookReceiver

pytestmark = pytest.mark.integration

SECRET = "hook-secret"
ENV = {
    **SUBPROCESS_WORKERS,
    "GOWA_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
    "GOWA_WEBHOOK_BACKOFF_CAP": "4",
    # These tests push hundreds of sends through one key on purpose.
    "GOWA_RATE_LIMIT": "1000",
    "GOWA_RATE_LIMIT_BURST": "1000",
}


@pytest.fixture
def receiver():
    hook = WebhookReceiver(SECRET).start()
    yield hook
    hook.close()


def _gateway(gateway_factory, sandbox, env=None, data_dir=None):
    return gateway_factory(
        env={**ENV, **(env or {})}, args=["--sandbox", sandbox.url], data_dir=data_dir
    )


def _pair_with_webhook(gateway, sandbox, receiver, suffix):
    sender, target = f"1555001{suffix}1", f"1555001{suffix}2"
    new_phone(sandbox, sender, "Sender")
    new_phone(sandbox, target, "Target")
    pair(gateway, sandbox, f"tx{suffix}", sender)
    pair(gateway, sandbox, f"rx{suffix}", target)
    status, body = gateway.http.call(
        "PATCH",
        f"/api/sessions/rx{suffix}",
        {"config": {"webhooks": [{"url": receiver.url, "secret": SECRET, "events": ["message"]}]}},
    )
    assert status == 200, body
    return f"tx{suffix}", target


def _send_many(gateway, session_id, phone, count, prefix):
    def one(n):
        status, body = gateway.http.post(
            f"/api/{session_id}/send/message", {"phone": phone, "message": f"{prefix} {n}"}
        )
        assert status == 200, body
        return body["results"]["message_id"]

    with ThreadPoolExecutor(8) as pool:
        return set(pool.map(one, range(count)))


def _delivered_ids(receiver):
    items = receiver.items("message")
    assert all(item.signature_ok for item in items), "a webhook had a bad signature"
    return {item.body["payload"]["id"] for item in items}


def test_receiver_down_then_up_gets_everything_signed(gateway_factory, sandbox, receiver):
    gateway = _gateway(gateway_factory, sandbox)
    sender, target = _pair_with_webhook(gateway, sandbox, receiver, "1")
    receiver.stop()
    sent = _send_many(gateway, sender, target, 200, "down")
    time.sleep(10)  # the receiver stays down while deliveries fail and back off
    assert receiver.items() == []
    status, body = gateway.http.get("/api/rx1/webhooks/deliveries?status=pending&limit=500")
    assert status == 200 and body["results"]["counts"]["pending"] == 200
    assert body["results"]["deliveries"][0]["last_error"]
    receiver.start()
    wait_until(
        lambda: _delivered_ids(receiver) >= sent,
        60,
        interval=0.5,
        what="all 200 webhooks after the receiver came back",
    )
    first = receiver.items("message")[0]
    assert first.headers["X-Webhook-Event"] == "message"
    assert first.headers["X-Event-Id"] == first.body["id"]
    assert first.body["session_id"] == "rx1" and first.body["device_id"].startswith(target)
    counts = gateway.http.get("/api/rx1/webhooks/deliveries")[1]["results"]["counts"]
    assert counts["delivered"] >= 200 and counts["dead"] == 0


def test_gateway_sigkill_mid_delivery_loses_nothing(gateway_factory, sandbox, tmp_path):
    """Injected: SIGKILL of the gateway while a slow receiver (4 at a time, 0.2 s each) is
    being fed 200 webhooks; the restarted gateway must deliver what was left."""
    slow = WebhookReceiver(SECRET, delay=0.2).start()
    throttled = {"GOWA_WEBHOOK_CONCURRENCY": "4"}
    try:
        gateway = _gateway(gateway_factory, sandbox, env=throttled)
        sender, target = _pair_with_webhook(gateway, sandbox, slow, "2")
        sent = _send_many(gateway, sender, target, 200, "kill")
        wait_until(lambda: len(slow.items()) >= 20, 30, what="deliveries under way")
        gateway.stop(signal.SIGKILL)
        wait_until(lambda: not find_workers(gateway.data_dir), 10, what="workers gone")
        before = len(_delivered_ids(slow))
        assert before < 200

        again = _gateway(gateway_factory, sandbox, env=throttled, data_dir=gateway.data_dir)
        again.wait_status("rx2", {"CONNECTED"}, timeout=30)
        wait_until(
            lambda: _delivered_ids(slow) >= sent,
            90,
            interval=0.5,
            what="every webhook after the restart",
        )
    finally:
        slow.close()


def test_redeliver_a_dead_letter(gateway_factory, sandbox, receiver):
    gateway = _gateway(gateway_factory, sandbox, env={"GOWA_WEBHOOK_MAX_ATTEMPTS": "1"})
    sender, target = _pair_with_webhook(gateway, sandbox, receiver, "3")
    receiver.stop()
    (message_id,) = _send_many(gateway, sender, target, 1, "dead")

    def dead():
        body = gateway.http.get("/api/rx3/webhooks/deliveries?status=dead")[1]
        return body["results"]["deliveries"]

    (delivery,) = wait_until(dead, 20, what="a dead-lettered delivery")
    receiver.start()
    status, body = gateway.http.post(f"/api/rx3/webhooks/deliveries/{delivery['id']}/redeliver")
    assert status == 200, body
    wait_until(lambda: message_id in _delivered_ids(receiver), 20, what="redelivery")
    status, body = gateway.http.post("/api/rx3/webhooks/deliveries/nope/redeliver")
    assert (status, body["code"]) == (404, "DELIVERY_NOT_FOUND")


def test_private_webhook_targets_are_refused_by_default(gateway):
    status, body = gateway.http.post(
        "/api/sessions",
        {
            "session_id": "ssrf",
            "start": False,
            "config": {"webhooks": [{"url": "http://169.254.169.254/latest"}]},
        },
    )
    assert (status, body["code"]) == (400, "VALIDATION_ERROR")
    assert "webhook_allow_networks" in body["message"]
