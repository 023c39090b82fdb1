"""The ZeroMQ layer with real sockets: hello, request/reply, deadlines, no lost events."""

import asyncio
import threading
from pathlib import Path

import pytest

from gowa_py import protocol as p
from gowa_py.ipc import GatewaySockets, WorkerError, WorkerLink, WorkerUnavailable, endpoints


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


def _serve(link: WorkerLink, answer):
    link.serve(lambda request: link.reply(answer(request)))


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


async def test_request_reply_and_hello(gateway):
    link = WorkerLink("s1", gateway.command_endpoint, gateway.event_endpoint)
    link.hello(pid=42, started_at=1.0)
    await _until(lambda: gateway.seen_hellos)
    assert gateway.seen_hellos[0].pid == 42
    _serve(link, lambda r: p.Reply(id=r.id, result=p.Pong(pid=42, uptime_s=1.0)))
    result = await gateway.request("s1", p.Ping(), timeout=2)
    assert result == p.Pong(pid=42, uptime_s=1.0)
    await link.close()


async def test_worker_error_is_raised_with_its_code(gateway):
    link = WorkerLink("s1", gateway.command_endpoint, gateway.event_endpoint)
    link.hello(pid=1, started_at=1.0)
    await _until(lambda: gateway.seen_hellos)
    error = p.ErrorInfo(code=p.ERR_NOT_CONNECTED, message="not connected")
    _serve(link, lambda r: p.Reply(id=r.id, error=error))
    with pytest.raises(WorkerError) as info:
        await gateway.request("s1", p.GetStatus(), timeout=2)
    assert info.value.code == p.ERR_NOT_CONNECTED
    await link.close()


async def test_replies_from_threads_while_requests_keep_arriving(gateway):
    """A reply sent from a thread can swallow the descriptor's signal of a new request;
    the link must still see that request."""
    link = WorkerLink("busy", gateway.command_endpoint, gateway.event_endpoint)
    link.hello(pid=1, started_at=1.0)
    await _until(lambda: gateway.seen_hellos)
    threads = []

    def answer_later(request):
        def run():
            link.reply(p.Reply(id=request.id, result=p.Pong(pid=1, uptime_s=0.0)))

        thread = threading.Thread(target=run)
        threads.append(thread)
        thread.start()

    link.serve(answer_later)
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
    link = WorkerLink("mute", gateway.command_endpoint, gateway.event_endpoint)
    link.hello(pid=1, started_at=1.0)
    await _until(lambda: gateway.seen_hellos)
    with pytest.raises(WorkerUnavailable, match="did not answer"):
        await gateway.request("mute", p.Ping(), timeout=0.3)
    await link.close()


async def test_events_published_before_subscription_are_not_lost(gateway):
    link = WorkerLink("s1", gateway.command_endpoint, gateway.event_endpoint)
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
    link = WorkerLink("s2", gateway.command_endpoint, gateway.event_endpoint)
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
