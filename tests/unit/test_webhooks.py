"""Outbox, signatures and the SSRF policy (pure parts of the webhooks)."""

import asyncio
import ipaddress
import time

import pytest
from aiohttp import web

from gowa_py import protocol as p
from gowa_py.config import load_settings
from gowa_py.eventbody import EventBody
from gowa_py.models import SessionConfig, Webhook
from gowa_py.storage.factory import SqliteStorage, sqlite_outbox
from gowa_py.webhooks.deliverer import WebhookDeliverer
from gowa_py.webhooks.outbox import DEAD, DELIVERED, GLOBAL_SECRET, PENDING
from gowa_py.webhooks.policy import BlockedTarget, TargetPolicy, embedded_ipv4, parse_networks
from gowa_py.webhooks.signing import sign, verify
from tests.procs import free_port


def test_signature_is_gowa_compatible():
    # Same recipe as GoWA's documented Python verifier.
    import hashlib
    import hmac

    body = b'{"event":"message"}'
    expected = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert sign(body, "secret") == f"sha256={expected}"
    assert verify(body, "secret", f"sha256={expected}")
    assert not verify(body + b" ", "secret", f"sha256={expected}")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fc00::1",
        "0.0.0.0",
        "224.0.0.1",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        # An IPv4 address carried in IPv6 is judged as that IPv4 address.
        "::127.0.0.1",
        "::ffff:0:7f00:1",
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
        "2002:7f00:1::1",
        "2002:c0a8:101::",
        "::ffff:169.254.169.254",
        # Special-purpose ranges Python 3.11's is_global lets through.
        "192.0.0.8",
        "fec0::1",
        "64:ff9b:1::7f00:1",
        "0.1.2.3",
        "255.255.255.255",
        "ff02::1",
        "2001:db8::1",
    ],
)
def test_private_and_reserved_targets_are_refused_by_default(address):
    policy = TargetPolicy([], [])
    assert policy.reason(address)
    with pytest.raises(BlockedTarget):
        policy.check_literal(address)


def test_allow_and_deny_lists():
    policy = TargetPolicy(parse_networks("127.0.0.0/8"), parse_networks("8.8.8.0/24"))
    assert policy.reason("127.0.0.1") is None
    assert policy.reason("10.0.0.1")
    assert policy.reason("8.8.8.8")
    assert policy.reason("1.1.1.1") is None
    policy.check_literal("example.com")  # names are checked when resolved


def test_embedded_public_ipv4_passes_and_lists_match_either_form():
    policy = TargetPolicy(parse_networks("127.0.0.0/8"), parse_networks("2002::/16"))
    assert policy.reason("64:ff9b::808:808") is None
    assert policy.reason("::ffff:8.8.8.8") is None
    assert policy.reason("64:ff9b::7f00:1") is None
    assert policy.reason("::127.0.0.1") is None
    assert policy.reason("2002:808:808::1")
    assert embedded_ipv4(ipaddress.ip_address("2002:c0a8:101::")) == ipaddress.ip_address(
        "192.168.1.1"
    )
    assert embedded_ipv4(ipaddress.ip_address("::1")) is None
    assert embedded_ipv4(ipaddress.ip_address("2a00:1450::1")) is None


def test_bad_network_is_reported():
    with pytest.raises(ValueError, match="nope"):
        parse_networks("10.0.0.0/8, nope")


def test_outbox_enqueue_is_idempotent_and_orders_due(storage_backend):
    outbox = storage_backend.outbox()
    targets = [("http://a/hook", "s1"), ("http://b/hook", "s2")]
    assert outbox.enqueue("e1", "message", targets, b"{}") == 2
    assert outbox.enqueue("e1", "message", targets, b"{}") == 0
    due = outbox.due(time.time() + 1, 10, set())
    assert {d.url for d in due} == {"http://a/hook", "http://b/hook"}
    assert outbox.due(time.time() + 1, 10, {due[0].id}) == due[1:]


def test_outbox_retry_dead_letter_and_redeliver(storage_backend):
    outbox = storage_backend.outbox()
    outbox.enqueue("e1", "message", [("http://a/hook", "s")], b"{}")
    (delivery,) = outbox.due(time.time() + 1, 10, set())
    outbox.mark_failed(delivery.id, 500, "HTTP 500", time.time() + 60)
    assert outbox.due(time.time() + 1, 10, set()) == []
    again = outbox.get(delivery.id)
    assert (again.status, again.attempts, again.last_status) == (PENDING, 1, 500)

    outbox.hurry("http://a/hook", time.time())
    assert [d.id for d in outbox.due(time.time() + 0.1, 10, set())] == [delivery.id]

    outbox.mark_failed(delivery.id, None, "refused", None)
    assert outbox.get(delivery.id).status == DEAD
    assert outbox.counts() == {PENDING: 0, DELIVERED: 0, DEAD: 1}
    assert outbox.redeliver(delivery.id)
    assert outbox.get(delivery.id).status == PENDING and outbox.get(delivery.id).attempts == 0
    outbox.mark_delivered(delivery.id, 200)
    assert outbox.get(delivery.id).status == DELIVERED
    assert "secret" not in outbox.get(delivery.id).public()
    assert not outbox.redeliver("nope")


def test_outbox_next_due_follows_every_write(storage_backend):
    """next_due_at is cached in memory; each write must be seen at once, as if queried."""
    outbox = storage_backend.outbox()

    def fresh():
        return storage_backend.outbox().next_due_at()

    assert outbox.next_due_at() is None
    outbox.enqueue("e1", "message", [("http://a/hook", "s")], b"{}")
    first = outbox.next_due_at()
    assert first is not None and first == fresh()
    (delivery,) = outbox.due(time.time() + 1, 10, set())
    retry_at = time.time() + 60
    outbox.mark_failed(delivery.id, 500, "HTTP 500", retry_at)
    assert outbox.next_due_at() == retry_at == fresh()
    now = time.time()
    outbox.hurry("http://a/hook", now)
    assert outbox.next_due_at() == now == fresh()
    outbox.mark_failed(delivery.id, None, "refused", None)
    assert outbox.next_due_at() is None and fresh() is None
    assert outbox.redeliver(delivery.id)
    assert outbox.next_due_at() is not None and outbox.next_due_at() == fresh()
    outbox.mark_delivered(delivery.id, 200)
    assert outbox.next_due_at() is None and fresh() is None


def test_a_replaced_chats_db_gets_the_pending_deliveries_of_the_open_one(tmp_path):
    """chats.db replaced (a backup restored) while its outbox was open: the pending rows
    the old, unlinked file holds move to the new file; delivered ones stay behind."""
    settings = load_settings({}, {})
    storage = SqliteStorage(tmp_path)
    storage.registry.create("s", SessionConfig(), "stopped")
    deliverer = WebhookDeliverer(settings, storage)
    outbox = deliverer.outbox("s")
    outbox.enqueue("e1", "message", [("http://a/hook", "k")], b"1")
    outbox.enqueue("e2", "message", [("http://a/hook", "k")], b"2")
    outbox.mark_delivered(outbox.due(time.time() + 1, 10, set())[0].id, 200)
    chats = tmp_path / "sessions" / "s" / "chats.db"
    backup = tmp_path / "backup.db"
    sqlite_outbox(backup).close()
    for suffix in ("-wal", "-shm"):  # the old file's: they must not meet the new one
        (tmp_path / "sessions" / "s" / f"chats.db{suffix}").unlink()
    backup.replace(chats)

    deliverer.reopen("s")
    deliverer.reopen("s")  # nothing open any more: nothing to do
    assert [(d.event_id, d.body) for d in sqlite_outbox(chats).pending()] == [("e2", b"2")]
    assert deliverer.outbox("s").counts()[DELIVERED] == 0


def test_delivered_rows_are_pruned_and_secrets_forgotten(storage_backend):
    outbox = storage_backend.outbox()
    outbox.enqueue("e1", "message", [("http://a/hook", "s")], b"{}")
    (delivery,) = outbox.due(time.time() + 1, 10, set())
    outbox.mark_delivered(delivery.id, 200)
    outbox.prune_delivered(time.time() + 1)
    assert outbox.list(None, 10) == []
    outbox.enqueue("e2", "message", [("http://a/hook", "global")], b"{}")
    outbox.forget_secret("global")
    assert [d.secret for d in outbox.pending()] == [GLOBAL_SECRET]


async def test_a_slow_receiver_does_not_spin_the_delivery_loop(storage_backend):
    """While a delivery waits on its receiver, the loop sleeps until something changes."""
    answered = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)
        answered.set()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = load_settings({}, {"GOWA_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8"})
    storage = storage_backend.storage()
    storage.registry.create("s", SessionConfig(), "stopped")
    deliverer = WebhookDeliverer(settings, storage)
    passes = 0
    launch_due = deliverer._launch_due

    def counted() -> float | None:
        nonlocal passes
        passes += 1
        return launch_due()

    deliverer._launch_due = counted  # type: ignore[method-assign]
    queued = storage_backend.outbox("s")
    queued.enqueue("e1", "message", [(f"http://127.0.0.1:{port}/hook", "k")], b"{}")
    queued.close()
    await deliverer.start()
    try:
        outbox = deliverer.outbox("s")
        await asyncio.wait_for(answered.wait(), 10)
        assert passes < 10, f"{passes} passes of the delivery loop in 1.5 s"
        for _ in range(100):
            if outbox.counts().get(DELIVERED):
                break
            await asyncio.sleep(0.05)
        assert outbox.counts().get(DELIVERED) == 1
    finally:
        await deliverer.close()
        await runner.cleanup()


async def test_outboxes_stay_bounded_and_every_delivery_goes_out(storage_backend):
    """One open outbox at most for three sessions: each outbox is closed while its POST is
    on the way (another session's event opens the next), and the answer is still
    recorded; nothing pending is lost."""

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.2)
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = load_settings(
        {}, {"GOWA_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8", "GOWA_WEBHOOK_OPEN_OUTBOXES": "1"}
    )
    storage = storage_backend.storage()
    hook = Webhook(url=f"http://127.0.0.1:{port}/hook", secret="k", events=[])
    ids = ["a", "b", "c"]
    for session_id in ids:
        storage.registry.create(session_id, SessionConfig(webhooks=[hook]), "stopped")
    deliverer = WebhookDeliverer(settings, storage)
    await deliverer.start()
    try:
        for n in range(2):
            for session_id in ids:
                event = p.Event(
                    id=f"{session_id}{n}",
                    session_id=session_id,
                    name="message",
                    timestamp=time.time(),
                    payload={},
                )
                await deliverer.on_event(EventBody(event, storage.registry.get(session_id)))
                assert deliverer.open_outboxes == 1

        def delivered(session_id: str) -> int:
            return storage_backend.outbox(session_id).counts()[DELIVERED]

        for _ in range(100):
            if all(delivered(session_id) == 2 for session_id in ids):
                break
            await asyncio.sleep(0.05)
        assert [delivered(session_id) for session_id in ids] == [2, 2, 2]
        assert deliverer.open_outboxes == 1
    finally:
        await deliverer.close()
        await runner.cleanup()
