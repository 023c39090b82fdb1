"""The ZeroMQ layer with real sockets: hello, request/reply, deadlines, no lost events, and
a worker that can only speak as itself."""

import asyncio
import gc
import threading
import time
import warnings
from pathlib import Path

import pytest
import zmq

from gowa_py import protocol as p
from gowa_py.ipc import (
    MAX_HANDSHAKES,
    GatewaySockets,
    WorkerError,
    WorkerLink,
    WorkerUnavailable,
    endpoints,
)


@pytest.fixture
async def gateway(tmp_path):
    events: list[p.Event] = []
    hellos: list[p.Hello] = []

    async def on_event(event):
        events.append(event)

    async def on_hello(hello):
        hellos.append(hello)

    command, event = endpoints(tmp_path)
    sockets = GatewaySockets(command, event, on_event, on_hello)
    await sockets.start()
    sockets.seen_events, sockets.seen_hellos = events, hellos
    yield sockets
    await sockets.close()


def _link(gateway: GatewaySockets, session_id: str) -> WorkerLink:
    """The worker end of ``session_id``, with the credentials the gateway issued for it."""
    return WorkerLink(
        session_id,
        gateway.command_endpoint,
        gateway.event_endpoint,
        gateway.server_key,
        gateway.admit(session_id),
    )


def _serve(link: WorkerLink, answer, lost=lambda: None):
    link.serve(lambda request: link.reply(answer(request)), lost)


def _ponging(gateway: GatewaySockets, session_id: str) -> tuple[WorkerLink, list[bool]]:
    """A worker end that has said hello and answers every request with a Pong; the list
    gets an entry each time the link reports its command connection dropped."""
    link = _link(gateway, session_id)
    link.hello(pid=42, started_at=1.0)
    lost: list[bool] = []
    _serve(
        link,
        lambda r: p.Reply(id=r.id, result=p.Pong(pid=42, uptime_s=1.0)),
        lambda: lost.append(True),
    )
    return link, lost


async def _until(predicate, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def test_endpoints_fit_the_kernel_limit(tmp_path):
    deep = tmp_path / ("d" * 200) / ("e" * 200)
    for endpoint in endpoints(deep):
        assert len(endpoint.removeprefix("ipc://")) < 107


async def test_a_closed_gateway_leaves_no_socket_folder(tmp_path):
    async def ignore(_message):
        return None

    command, event = endpoints(tmp_path / "data")
    folder = Path(command.removeprefix("ipc://")).parent
    sockets = GatewaySockets(command, event, ignore, ignore)
    await sockets.start()
    assert folder.is_dir()
    await sockets.close()
    assert not folder.exists()


async def test_a_dropped_command_connection_is_reported(tmp_path):
    """libzmq does not bring back a connection it dropped for want of memory, so the link
    tells its worker (which then ends) instead of waiting on it; a gateway closing its
    sockets is the drop a test can cause."""

    hellos: list[p.Hello] = []

    async def ignore(_event):
        return None

    async def on_hello(hello):
        hellos.append(hello)

    command, event = endpoints(tmp_path)
    sockets = GatewaySockets(command, event, ignore, on_hello)
    await sockets.start()
    link, lost = _ponging(sockets, "s1")
    await _until(lambda: hellos)
    assert await sockets.request("s1", p.Ping(), timeout=2) == p.Pong(pid=42, uptime_s=1.0)
    assert not lost
    await sockets.close()
    await _until(lambda: lost)
    await link.close()


async def test_a_link_its_worker_closes_reports_no_drop(gateway):
    link, lost = _ponging(gateway, "s1")
    await _until(lambda: gateway.seen_hellos)
    assert await gateway.request("s1", p.Ping(), timeout=2) == p.Pong(pid=42, uptime_s=1.0)
    await link.close()
    await asyncio.sleep(0.3)
    assert not lost


async def test_request_reply_and_hello(gateway):
    link = _link(gateway, "s1")
    link.hello(pid=42, started_at=1.0)
    await _until(lambda: gateway.seen_hellos)
    assert gateway.seen_hellos[0].pid == 42
    _serve(link, lambda r: p.Reply(id=r.id, result=p.Pong(pid=42, uptime_s=1.0)))
    result = await gateway.request("s1", p.Ping(), timeout=2)
    assert result == p.Pong(pid=42, uptime_s=1.0)
    await link.close()


async def test_worker_error_is_raised_with_its_code(gateway):
    link = _link(gateway, "s1")
    link.hello(pid=1, started_at=1.0)
    await _until(lambda: gateway.seen_hellos)
    error = p.ErrorInfo(code=p.ErrorCode.SESSION_NOT_CONNECTED, message="not connected")
    _serve(link, lambda r: p.Reply(id=r.id, error=error))
    with pytest.raises(WorkerError) as info:
        await gateway.request("s1", p.GetStatus(), timeout=2)
    assert info.value.code == p.ErrorCode.SESSION_NOT_CONNECTED
    await link.close()


async def test_replies_from_threads_while_requests_keep_arriving(gateway):
    """A reply sent from a thread can swallow the descriptor's signal of a new request;
    the link must still see that request."""
    link = _link(gateway, "busy")
    link.hello(pid=1, started_at=1.0)
    await _until(lambda: gateway.seen_hellos)
    threads = []

    def answer_later(request):
        def run():
            link.reply(p.Reply(id=request.id, result=p.Pong(pid=1, uptime_s=0.0)))

        thread = threading.Thread(target=run)
        threads.append(thread)
        thread.start()

    link.serve(answer_later, lambda: None)
    try:
        for _ in range(5):
            replies = await asyncio.gather(
                *(gateway.request("busy", p.Ping(), timeout=5) for _ in range(200))
            )
            assert replies == [p.Pong(pid=1, uptime_s=0.0)] * 200
    finally:
        for thread in threads:
            thread.join()
        await link.close()


async def test_unknown_worker_fails_fast(gateway):
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(WorkerUnavailable):
        await gateway.request("nobody", p.Ping(), timeout=5)
    assert loop.time() - started < 1


async def test_silent_worker_hits_the_deadline(gateway):
    link = _link(gateway, "mute")
    link.hello(pid=1, started_at=1.0)
    await _until(lambda: gateway.seen_hellos)
    with pytest.raises(WorkerUnavailable, match="did not answer"):
        await gateway.request("mute", p.Ping(), timeout=0.3)
    await link.close()


async def test_events_published_before_subscription_are_not_lost(gateway):
    link = _link(gateway, "s1")
    for n in range(50):
        link.publish(
            p.Event(id=str(n), session_id="s1", name="x", timestamp=1.0, payload={}, seq=n + 1)
        )
    assert await link.wait_subscribed(5)
    for n in range(50, 100):
        link.publish(
            p.Event(id=str(n), session_id="s1", name="x", timestamp=1.0, payload={}, seq=n + 1)
        )
    await _until(lambda: len(gateway.seen_events) == 100)
    assert [e.seq for e in gateway.seen_events] == list(range(1, 101))
    await link.close()


async def test_events_published_from_many_threads_arrive_in_the_order_of_the_calls(gateway):
    """Workers publish from neonize's Go threads; the gateway must see seq order."""
    link = _link(gateway, "s2")
    assert await link.wait_subscribed(5)
    order = threading.Lock()
    seq = 0

    def publish_many() -> None:
        nonlocal seq
        for _ in range(200):
            with order:  # as Worker.emit: number and publish under one lock
                seq += 1
                link.publish(
                    p.Event(
                        id=str(seq), session_id="s2", name="x", timestamp=1.0, payload={}, seq=seq
                    )
                )

    threads = [threading.Thread(target=publish_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    await asyncio.to_thread(lambda: [thread.join() for thread in threads])
    await _until(lambda: len(gateway.seen_events) == 800)
    assert [e.seq for e in gateway.seen_events] == list(range(1, 801))
    await link.close()
    link.publish(p.Event(id="late", session_id="s2", name="x", timestamp=1.0, payload={}, seq=801))


# --------------------------------------------------------------- a hostile worker
# A compromised worker holds its own credentials (``alice``'s here) and tries to speak as
# another session (``bob``) on the same two sockets.


def _hostile(gateway, keys, kind, identity=None):
    """A raw socket of a compromised worker, with the keys it holds (None: no CURVE)."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(kind)
    sock.linger = 0
    if keys is not None:
        sock.curve_serverkey = gateway.server_key.encode()
        sock.curve_publickey = zmq.curve_public(keys.secret_key)
        sock.curve_secretkey = keys.secret_key
    if identity is not None:
        sock.setsockopt(zmq.IDENTITY, identity)
    endpoint = gateway.event_endpoint if kind == zmq.XPUB else gateway.command_endpoint
    sock.connect(endpoint)
    return sock


def _forged(session_id, seq=0, body="forged"):
    payload = {"body": body}
    return p.Event(f"{body}-{seq}", session_id, "message", 1.0, payload, seq=seq)


async def _ready_pub(sock):
    """Wait for the gateway's subscription (the handshake passed)."""
    assert await asyncio.to_thread(sock.poll, 5000), "no subscription: the handshake failed"
    sock.recv()


async def test_an_event_for_another_session_never_reaches_the_gateway(gateway):
    bob = _link(gateway, "bob")
    assert await bob.wait_subscribed(5)
    hostile = _hostile(gateway, gateway.admit("alice"), zmq.XPUB)
    await _ready_pub(hostile)
    for event in (_forged("bob"), _forged("bob", seq=7), _forged("alice", body="own")):
        hostile.send_multipart([event.session_id.encode(), p.encode(event)])
    bob.publish(_forged("bob", body="real"))
    await _until(lambda: any(e.payload["body"] == "real" for e in gateway.seen_events))
    await asyncio.sleep(0.2)
    assert sorted((e.session_id, e.payload["body"]) for e in gateway.seen_events) == [
        ("alice", "own"),
        ("bob", "real"),
    ]
    assert gateway.refused.counts["event"] == 2
    hostile.close()
    await bob.close()


async def test_a_hello_as_another_session_is_refused_and_brings_no_commands(gateway):
    alice = gateway.admit("alice")
    named_bob = _hostile(gateway, alice, zmq.DEALER, identity=b"bob")
    own_id = _hostile(gateway, alice, zmq.DEALER, identity=alice.routing_id)
    for sock in (named_bob, own_id):
        sock.send(p.encode(p.Hello(session_id="bob", pid=1, started_at=1.0)))
    await asyncio.sleep(0.3)
    assert gateway.seen_hellos == []
    assert gateway.refused.counts["hello"] == 2
    with pytest.raises(WorkerUnavailable, match="not connected"):
        await gateway.request("bob", p.Ping(), timeout=1)

    bob = _link(gateway, "bob")
    bob.hello(pid=2, started_at=1.0)
    await _until(lambda: gateway.seen_hellos)
    _serve(bob, lambda r: p.Reply(id=r.id, result=p.Pong(pid=2, uptime_s=1.0)))
    for _ in range(3):
        assert await gateway.request("bob", p.Ping(), timeout=2) == p.Pong(pid=2, uptime_s=1.0)
    assert not named_bob.poll(100) and not own_id.poll(0)
    named_bob.close()
    own_id.close()
    await bob.close()


async def test_a_second_connection_cannot_take_over_a_routing_id_in_use(gateway):
    """Even with bob's routing id (say it leaked), a later connection receives nothing:
    ROUTER_HANDOVER is off, and commands go where bob's authenticated hello came from."""
    bob_keys = gateway.admit("bob")
    bob = WorkerLink(
        "bob", gateway.command_endpoint, gateway.event_endpoint, gateway.server_key, bob_keys
    )
    bob.hello(pid=2, started_at=1.0)
    await _until(lambda: gateway.seen_hellos)
    _serve(bob, lambda r: p.Reply(id=r.id, result=p.Pong(pid=2, uptime_s=1.0)))
    thief = _hostile(gateway, gateway.admit("alice"), zmq.DEALER, identity=bob_keys.routing_id)
    thief.send(p.encode(p.Hello(session_id="bob", pid=2, started_at=1.0)))
    await asyncio.sleep(0.3)
    for _ in range(3):
        assert await gateway.request("bob", p.Ping(), timeout=2) == p.Pong(pid=2, uptime_s=1.0)
    assert not thief.poll(100)
    assert len(gateway.seen_hellos) == 1
    thief.close()
    await bob.close()


async def test_a_reply_from_another_connection_does_not_answer_a_request(gateway):
    bob = _link(gateway, "bob")
    bob.hello(pid=2, started_at=1.0)
    await _until(lambda: gateway.seen_hellos)
    waiting: list[p.Request] = []
    bob.serve(waiting.append, lambda: None)  # bob answers later, by hand
    alice = gateway.admit("alice")
    hostile = _hostile(gateway, alice, zmq.DEALER, identity=alice.routing_id)
    hostile.send(p.encode(p.Hello(session_id="alice", pid=3, started_at=1.0)))
    await _until(lambda: len(gateway.seen_hellos) == 2)

    pending = asyncio.create_task(gateway.request("bob", p.GetStatus(), timeout=5))
    await _until(lambda: waiting)
    # The request id leaked to alice's worker: its forged answer must not count.
    forged = p.Status(state=p.SessionState.LOGGED_OUT, since=1.0)
    hostile.send(p.encode(p.Reply(id=waiting[0].id, result=forged)))
    await asyncio.sleep(0.3)
    assert not pending.done()
    assert gateway.refused.counts["reply"] == 1
    real = p.Status(state=p.SessionState.CONNECTED, since=1.0)
    bob.reply(p.Reply(id=waiting[0].id, result=real))
    assert await pending == real
    hostile.close()
    await bob.close()


async def test_only_keys_the_gateway_issued_and_still_holds_connect(gateway):
    keyless = _hostile(gateway, None, zmq.XPUB)
    _public, secret = zmq.curve_keypair()
    unknown = _hostile(gateway, p.WorkerKeys(secret_key=secret, routing_id=b"x"), zmq.XPUB)
    replaced = gateway.admit("bob")
    current = gateway.admit("bob")
    stale = _hostile(gateway, replaced, zmq.XPUB)
    fresh = _hostile(gateway, current, zmq.XPUB)
    await _ready_pub(fresh)
    for sock in (keyless, unknown, stale):
        assert not sock.poll(300), "a connection the gateway should have refused subscribed"
        sock.send_multipart([b"bob", p.encode(_forged("bob"))])
    await asyncio.sleep(0.3)
    assert gateway.seen_events == []
    assert gateway.refused.counts["handshake"] >= 2  # the keyless one fails before ZAP
    for sock in (keyless, unknown, stale, fresh):
        sock.close()


async def test_one_key_makes_only_a_few_connections(gateway):
    """A worker cannot open connections by the thousand (each a libzmq routing id)."""
    keys = gateway.admit("alice")
    socks = [_hostile(gateway, keys, zmq.XPUB) for _ in range(MAX_HANDSHAKES + 2)]
    subscribed = [await asyncio.to_thread(sock.poll, 1000) for sock in socks]
    assert sum(bool(s) for s in subscribed) == MAX_HANDSHAKES
    for sock in socks:
        sock.close()


async def test_closing_before_hello_handlers_start_leaves_no_unawaited_coroutine(tmp_path):
    """Hellos read in the loop turn before a close get handler tasks that are cancelled
    before their first step; nothing of theirs may be left unawaited (the gateway printed
    "coroutine 'Supervisor._on_hello' was never awaited" at shutdown)."""

    async def ignore(_message):
        return None

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for turns in range(1, 4):  # loop turns between the hellos' arrival and the close
            command, event = endpoints(tmp_path / str(turns))
            sockets = GatewaySockets(command, event, ignore, ignore)
            await sockets.start()
            workers = []
            for i in range(4):
                keys = sockets.admit(f"s{i}")
                workers.append(_hostile(sockets, keys, zmq.DEALER, identity=keys.routing_id))
                workers[-1].send(p.encode(p.Hello(session_id=f"s{i}", pid=i, started_at=1.0)))
            time.sleep(0.2)  # the loop is blocked: every hello waits in the ROUTER
            for _ in range(turns):
                await asyncio.sleep(0)
            await sockets.close()
            for worker in workers:
                worker.close()
            gc.collect()
    unawaited = [w for w in caught if "was never awaited" in str(w.message)]
    assert not unawaited, [str(w.message) for w in unawaited]
