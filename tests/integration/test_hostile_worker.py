"""A compromised worker on the wire: it holds its own session's credentials and tries to
speak as another session (forged events, hellos and replies, bob's command channel).

The gateway runs in-process with a real worker process for ``bob``; the hostile worker of
``alice`` is a set of real ZeroMQ sockets holding the credentials the gateway minted for
alice's worker, which is exactly what an exploit inside that worker would hold.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
import zmq
from aiohttp.test_utils import TestClient, TestServer

from gowa_py import protocol as p
from gowa_py.config import load_settings
from gowa_py.eventbody import EventBody
from gowa_py.gateway.app import create_app
from gowa_py.gateway.keys import SUPERVISOR
from gowa_py.models import SessionConfig
from gowa_py.supervisor import Supervisor
from gowa_py.supervisor import process as proc

pytestmark = pytest.mark.integration

HEALTH = {"health_interval": 0.5, "health_timeout": 0.5, "health_failures": 2}


@pytest.fixture(params=["zygote", "subprocess"])
async def supervisor(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Supervisor]:
    settings = load_settings({**HEALTH, "worker_mode": request.param}, {})
    client = TestClient(TestServer(create_app(settings, tmp_path / "data")))
    await client.start_server()
    try:
        yield client.app[SUPERVISOR]
    finally:
        await client.close()


class HostileWorker:
    """The sockets of a compromised worker: its own keys, anyone's words."""

    def __init__(self, supervisor: Supervisor, keys: p.WorkerKeys) -> None:
        self.sockets = supervisor.sockets
        self.keys = keys
        self.ctx = zmq.Context()
        self.pub = self._socket(zmq.XPUB)
        self.pub.connect(self.sockets.event_endpoint)
        self.dealers: list[zmq.Socket[bytes]] = []
        self.requests: list[p.Request] = []

    def _socket(self, kind: int) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(kind)
        sock.linger = 0
        sock.curve_serverkey = self.sockets.server_key.encode()
        sock.curve_publickey = zmq.curve_public(self.keys.secret_key)
        sock.curve_secretkey = self.keys.secret_key
        return sock

    def dealer(self, identity: bytes) -> zmq.Socket[bytes]:
        sock = self._socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, identity)
        sock.connect(self.sockets.command_endpoint)
        self.dealers.append(sock)
        return sock

    def wait_subscribed(self) -> None:
        assert self.pub.poll(5000), "the gateway never subscribed to the hostile XPUB"
        self.pub.recv()

    def publish(self, event: p.Event) -> None:
        self.pub.send_multipart([event.session_id.encode(), p.encode(event)])

    def answer_everything(self, bob_pid: int, forged: p.Event) -> None:
        """Record every request that reaches us and answer it as bob would not."""
        for sock in self.dealers:
            while sock.poll(0):
                request = p.decode_request(sock.recv())
                self.requests.append(request)
                result: p.Result = p.Pong(pid=bob_pid, uptime_s=0.0)
                if isinstance(request.command, p.ReplayEvents):
                    result = p.Events(events=[forged])
                sock.send(p.encode(p.Reply(id=request.id, result=result)))

    def close(self) -> None:
        self.ctx.destroy(linger=0)


def _event(session_id: str, name: str, seq: int = 0, body: str = "forged") -> p.Event:
    return p.Event(
        id=f"{name}-{seq}-{time.monotonic_ns()}",
        session_id=session_id,
        name=name,
        timestamp=time.time(),
        payload={"body": body, "from": "attacker"},
        seq=seq,
    )


async def test_a_hostile_worker_cannot_speak_as_another_session(supervisor: Supervisor) -> None:
    seen: list[p.Event] = []

    async def listen(body: EventBody) -> None:
        seen.append(body.event)

    supervisor.subscribe(listen)
    await supervisor.create("alice", SessionConfig(), start=False)
    await supervisor.create("bob", SessionConfig(), start=True)
    bob = supervisor.runners["bob"]
    assert await bob.wait_ready(30)
    bob_pid = bob.pid
    assert bob_pid is not None
    record = supervisor.registry.get("bob")
    assert record is not None
    forged_durable = _event("bob", "message", seq=record.last_event_seq + 1000)

    hostile = HostileWorker(supervisor, supervisor.sockets.admit("alice"))
    try:
        await asyncio.to_thread(hostile.wait_subscribed)
        # Events: a live message and a durable one for bob, and one of its own (control).
        hostile.publish(_event("bob", "message"))
        hostile.publish(forged_durable)
        hostile.publish(_event("alice", "log", body="own"))
        # Bob's command channel: a DEALER with bob's name as its identity (what workers
        # used), another with alice's issued routing id, both saying hello as bob.
        as_bob = hostile.dealer(b"bob")
        as_alice = hostile.dealer(hostile.keys.routing_id)
        hello = p.Hello(session_id="bob", pid=bob_pid, started_at=time.time())
        for sock in (as_bob, as_alice):
            sock.send(p.encode(hello))
        # Control: the same connection may speak as alice, and then gets alice's commands.
        as_alice.send(p.encode(p.Hello(session_id="alice", pid=1, started_at=time.time())))

        deadline = time.monotonic() + 4 * HEALTH["health_interval"] * HEALTH["health_failures"]
        pings: list[p.Result] = []
        alice_answered = False
        while time.monotonic() < deadline:
            hostile.answer_everything(bob_pid, forged_durable)
            pings.append(await supervisor.request("bob", p.Ping(), 2.0))
            if not alice_answered:
                with_alice = asyncio.create_task(supervisor.request("alice", p.Ping(), 2.0))
                while not with_alice.done():
                    hostile.answer_everything(bob_pid, forged_durable)
                    await asyncio.sleep(0.01)
                alice_answered = with_alice.exception() is None  # else: hello not read yet
            await asyncio.sleep(0.1)
        hostile.answer_everything(bob_pid, forged_durable)
    finally:
        hostile.close()

    assert any(e.session_id == "alice" and e.payload.get("body") == "own" for e in seen)
    assert alice_answered  # the hostile connection works: what it was refused, it was refused
    forged = [e for e in seen if e.session_id == "bob" and e.payload.get("from") == "attacker"]
    assert forged == []
    record = supervisor.registry.get("bob")
    assert record is not None and record.last_event_seq < forged_durable.seq
    # Bob's commands reached bob alone, and bob was never taken for dead.
    assert [r for r in hostile.requests if not isinstance(r.command, p.Ping)] == []
    assert len([r for r in hostile.requests if isinstance(r.command, p.Ping)]) == 1  # alice's
    assert all(isinstance(r, p.Pong) and r.pid == bob_pid for r in pings)
    assert bob.pid == bob_pid and bob.restarts == 0
    refused = supervisor.sockets.refused.counts
    assert refused["event"] >= 2 and refused["hello"] >= 2


def _pipes(pid: int) -> set[str]:
    """The pipes a process holds open (as ``pipe:[inode]``)."""
    folder = Path(f"/proc/{pid}/fd")
    targets = set()
    for fd in folder.iterdir():
        try:
            targets.add(os.readlink(fd))
        except FileNotFoundError:
            continue
    return {target for target in targets if target.startswith("pipe:")}


async def test_no_process_keeps_the_pipe_a_worker_key_came_through(supervisor: Supervisor) -> None:
    """The key travels in a pipe: the worker closes it once read, the zygote never keeps it
    (so neither does any worker it forks later), and in subprocess mode the environment
    holds only the descriptor's number."""
    zygote = proc.launcher.zygote_pid
    zygote_pipes = _pipes(zygote) if zygote is not None else set()
    await supervisor.create("bob", SessionConfig(), start=True)
    bob = supervisor.runners["bob"]
    assert await bob.wait_ready(30)
    assert bob.pid is not None
    environ = psutil.Process(bob.pid).environ()
    if zygote is not None:
        assert supervisor.settings.worker_mode == "zygote"
        assert _pipes(zygote) == zygote_pipes
        assert p.KEYS_FD_ENV not in environ  # set after the fork, and popped once read
    else:
        fd = environ[p.KEYS_FD_ENV]
        assert fd.isdigit()
        assert not Path(f"/proc/{bob.pid}/fd/{fd}").exists()
