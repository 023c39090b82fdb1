"""What authenticating the wire costs: request/reply round trips and events over ipc://,
with ZeroMQ's NULL mechanism (no keys, as before) and with CURVE, a ZAP handler and the
``User-Id`` check that gowa_py.ipc does on every message.

    python scripts/bench_wire.py --round-trips 20000 --events 50000

The gateway end runs in this process, the worker end in a child process (``--worker``),
each with the socket options gowa_py.ipc uses. Round trips are sequential (one request
in flight: the latency of one command); events are sent as fast as the worker can and
read as they come. CPU is ``time.process_time()`` of each process over the timed part,
libzmq's I/O thread included (that is where CURVE encrypts and decrypts), divided by the
number of messages. Payloads are the real structs: a ``Ping`` request, a ``Pong`` reply and
a ``message`` event with a 200-character body.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq
from zmq.auth.thread import ThreadAuthenticator

from gowa_py import protocol as p

ROOT = Path(__file__).resolve().parent.parent


def _event(n: int) -> bytes:
    payload = {"id": f"3EB0{n:016X}", "from": "15550001111@s.whatsapp.net", "body": "x" * 200}
    event = p.Event(id=f"{n:032x}", session_id="bench", name="message", timestamp=1.0,
                    payload=payload, seq=n + 1)  # fmt: skip
    return p.encode(event)


def worker(args: argparse.Namespace) -> None:
    """The worker end: answer ``--round-trips`` requests, then publish ``--events``."""
    ctx = zmq.Context()
    dealer, pub = ctx.socket(zmq.DEALER), ctx.socket(zmq.XPUB)
    dealer.setsockopt(zmq.IDENTITY, b"w" + bytes(15))
    pub.setsockopt(zmq.SNDHWM, 100_000)
    if args.curve:
        secret = args.secret.encode()
        for sock in (dealer, pub):
            sock.curve_serverkey = args.server_key.encode()
            sock.curve_publickey = zmq.curve_public(secret)
            sock.curve_secretkey = secret
    dealer.connect(args.command)
    pub.connect(args.event)
    pub.recv()  # the gateway's subscription
    dealer.send(b"ready")
    reply = p.encode(p.Reply(id="0" * 32, result=p.Pong(pid=1, uptime_s=1.0)))
    dealer.recv()
    started = time.process_time()
    for _ in range(args.round_trips):
        dealer.recv()
        dealer.send(reply)
    round_trip_cpu = time.process_time() - started
    events = [_event(n) for n in range(1000)]
    started = time.process_time()
    for n in range(args.events):
        pub.send_multipart([b"bench", events[n % 1000]])
    dealer.recv()  # all read: the I/O thread has encrypted and written every one
    event_cpu = time.process_time() - started
    dealer.send(json.dumps({"round_trip_cpu": round_trip_cpu, "event_cpu": event_cpu}).encode())
    dealer.recv()
    ctx.destroy(linger=1000)


def gateway(curve: bool, round_trips: int, events: int) -> dict[str, float]:
    ctx = zmq.Context()
    folder = tempfile.mkdtemp(prefix="gowa-bench-")
    command, event = f"ipc://{folder}/cmd.sock", f"ipc://{folder}/evt.sock"
    router, sub = ctx.socket(zmq.ROUTER), ctx.socket(zmq.SUB)
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVHWM, 100_000)
    extra: list[str] = []
    auth = None
    if curve:
        public, secret = zmq.curve_keypair()
        client_public, client_secret = zmq.curve_keypair()

        class Keys:
            def callback(self, domain: str, key: bytes) -> bool:
                return key == client_public

        class Auth(ThreadAuthenticator):
            def curve_user_id(self, client_public_key: bytes) -> str:
                return "bench"

        auth = Auth(ctx)
        auth.start()
        auth.configure_curve_callback("gowa", Keys())
        for sock in (router, sub):
            sock.curve_server = True
            sock.curve_secretkey = secret
            sock.zap_domain = b"gowa"
            sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
        extra = ["--curve", "--server-key", public.decode(), "--secret", client_secret.decode()]
    router.bind(command)
    sub.bind(event)
    child = subprocess.Popen(
        [sys.executable, __file__, "--worker", "--command", command, "--event", event,
         "--round-trips", str(round_trips), "--events", str(events), *extra],
        cwd=ROOT,
    )  # fmt: skip
    # The SUB attaches its connection (and sends the subscription) only when it is used.
    while not router.poll(10):
        sub.getsockopt(zmq.EVENTS)
    route, _ready = router.recv_multipart()
    request = p.encode(p.Request(id="0" * 32, deadline=2e9, command=p.Ping()))

    def read(sock: zmq.Socket[bytes]) -> list[object]:
        if not curve:
            return sock.recv_multipart()
        frames = sock.recv_multipart(copy=False)
        assert frames[-1].get("User-Id") == "bench"
        return frames

    router.send_multipart([route, b"go"])
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(round_trips):
        router.send_multipart([route, request])
        read(router)
    rt_wall, rt_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(events):
        read(sub)
    ev_wall, ev_cpu = time.perf_counter() - wall, time.process_time() - cpu
    router.send_multipart([route, b"got"])
    report = json.loads(router.recv_multipart()[1])
    router.send_multipart([route, b"bye"])
    child.wait(10)
    if auth is not None:
        auth.stop()
    ctx.destroy(linger=0)
    us = 1e6
    return {
        "round_trip_us": rt_wall / round_trips * us,
        "round_trip_gateway_cpu_us": rt_cpu / round_trips * us,
        "round_trip_worker_cpu_us": report["round_trip_cpu"] / round_trips * us,
        "event_us": ev_wall / events * us,
        "event_gateway_cpu_us": ev_cpu / events * us,
        "event_worker_cpu_us": report["event_cpu"] / events * us,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--round-trips", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--curve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--command", help=argparse.SUPPRESS)
    parser.add_argument("--event", help=argparse.SUPPRESS)
    parser.add_argument("--server-key", help=argparse.SUPPRESS)
    parser.add_argument("--secret", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    for run in range(args.repeat):
        for curve in (False, True):
            figures = gateway(curve, args.round_trips, args.events)
            name = "curve" if curve else "null "
            print(f"run {run + 1} {name} " + "  ".join(f"{k} {v:.1f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
