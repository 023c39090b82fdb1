"""API latency under load: C concurrent clients against a gateway with N connected sessions.

    python scripts/bench_api.py --sessions 50 --clients 50 --seconds 20
    python scripts/bench_api.py --routes sessions --profile   # + py-spy of the gateway
    python scripts/bench_api.py --routes send --rate 300      # open loop, 300 sends/s

Pairs N sessions through a sandbox, then for each route runs C clients in a closed loop
for S seconds: ``GET /api/sessions`` and ``POST /api/{id}/send/message``, the latter twice
(``--to``): client k sends from session k mod N

* ``sessions``: to the next session's phone, so every send is also received, decrypted,
  stored and receipted by another worker on the same cores (roughly twice the CPU);
* ``contacts``: to its own sandbox contact outside the gateway, whose one device is
  switched off (``POST /sim/phones/{p}/devices``): the send is encrypted for that device
  and held by the sandbox, and nothing comes back but the server's ack. That is what a
  notification or CRM service mostly does. (Until 2026-11-25 these contacts had no
  device at all: the send was encrypted for nobody and cost a device-list query each.)

The gateway runs with
``GOWA_RATE_LIMIT=0``: the per-client rate limit (20/s by default) would otherwise answer
most of the load with 429.

Method: before the clock starts, each sending session sends one message to its
recipient (a first message fetches the recipient's devices and a prekey bundle and starts
a Signal session, a cost paid once per contact: 2 % of the requests of a 20 s open loop
at 500/s, nearly all of its slowest, until 2026-11-29). Each client owns one keep-alive
HTTP/1.1 connection, opened before the clock starts, and sends its next request only
when the previous answer has been read in full (status line, headers and the whole
``Content-Length`` or chunked body); latency is request sent -> whole answer read. The
first answer on each connection is decoded and must be ``"code": "SUCCESS"``. Any
non-2xx answer or transport error counts as an error. The client
(``KeepAliveConnection`` in benchlib) only frames requests and answers and runs on
uvloop: aiohttp's client cost ~250 µs of CPU per request and became the limit at
~3000 req/s on two cores (``--client aiohttp --loop asyncio`` measures with it).

Per route, ``handler_ms`` is the mean time from the gateway's first middleware to its
handler's answer and ``worker_ms`` the mean worker round trip (ZeroMQ request to reply)
inside it, both from the gateway's Prometheus histograms; ``mean_ms`` minus
``handler_ms`` is what HTTP parsing, writing and waiting for a core add. The CPU used by
the gateway, the load generator (this process), the workers and the sandbox is reported
in % of one core, so a run shows who the two cores went to.

``--rate R`` runs an open loop instead: R requests per second in all, request i due at
i / R s on client i mod C, its latency counted from when it was due (a request that
waited for its client counts the wait). A closed loop of C clients on saturated cores
measures capacity (its mean latency is C / throughput, whatever the code); an open loop
below capacity measures what a send takes at that load.

``--profile`` records the gateway with py-spy (``pip install py-spy``, not a project
dependency) into ``bench-results/profile-<route>.txt`` (collapsed stacks); it slows the
gateway, so latencies of a profiled run are not comparable.
Results: a table on stdout and ``bench-results/api-*.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import psutil
import uvloop
from benchlib import (
    Api,
    HttpError,
    KeepAliveConnection,
    Stack,
    contact_number,
    machine,
    percentile,
    phone_number,
    py_spy,
    session_ids,
    table,
    write_result,
)
from prometheus_client.parser import text_string_to_metric_families

COLUMNS = [
    "route",
    "to",
    "mean_ms",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "rps",
    "errors",
    "handler_ms",
    "worker_ms",
    "gateway_cpu",
    "loadgen_cpu",
    "workers_cpu",
    "sandbox_cpu",
    "workers_ms_per_req",
    "workers_switches_per_req",
]

Request = Callable[[int, int], tuple[str, str, Any]]


def _thread_switches(processes: list[psutil.Process]) -> int:
    """Context switches of every thread of ``processes`` (psutil counts the main one only)."""
    total = 0
    for process in processes:
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{process.pid}/task"):
                with contextlib.suppress(OSError):
                    status = Path(f"/proc/{process.pid}/task/{task}/status").read_text()
                    total += sum(
                        int(line.split()[1])
                        for line in status.splitlines()
                        if "ctxt_switches:" in line
                    )
    return total


class CpuMeter:
    """CPU seconds of process groups between :meth:`start` and :meth:`stop`, in % of a core."""

    def __init__(self, groups: dict[str, list[psutil.Process]]) -> None:
        self.groups = groups
        self._before: dict[str, float] = {}
        self._started = 0.0
        self._switches = 0

    def _total(self, processes: list[psutil.Process]) -> float:
        total = 0.0
        for process in processes:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def start(self) -> None:
        self._before = {name: self._total(group) for name, group in self.groups.items()}
        self._switches = _thread_switches(self.groups["workers"])
        self._started = time.monotonic()

    def stop(self, requests: int) -> dict[str, float]:
        """CPU per group in % of a core, and the workers' CPU and thread switches per request."""
        elapsed = time.monotonic() - self._started
        spent = {
            name: self._total(group) - self._before[name] for name, group in self.groups.items()
        }
        switches = _thread_switches(self.groups["workers"]) - self._switches
        return {
            **{f"{name}_cpu": round(100 * cpu / elapsed, 1) for name, cpu in spent.items()},
            "workers_ms_per_req": round(1000 * spent["workers"] / max(requests, 1), 3),
            "workers_switches_per_req": round(switches / max(requests, 1), 1),
        }


Send = Callable[[str, str, Any], Awaitable[int]]


async def _lean_senders(url: str, clients: int) -> tuple[list[Send], Callable[[], None]]:
    """One keep-alive connection per client, opened before the clock starts."""
    parsed = urlsplit(url)
    connections = [
        KeepAliveConnection(parsed.hostname or "", parsed.port or 80) for _ in range(clients)
    ]
    await asyncio.gather(*(c.connect() for c in connections))

    def sender(connection: KeepAliveConnection) -> Send:
        checked = False

        async def send(method: str, path: str, body: Any) -> int:
            nonlocal checked
            data = None if body is None else json.dumps(body).encode()
            status, answer = await connection.request(method, path, data)
            if not checked and 200 <= status < 300:
                # The client does not decode answers; make sure the first one is whole.
                assert json.loads(answer)["code"] == "SUCCESS", answer[:200]
                checked = True
            return status

        return send

    def close() -> None:
        for connection in connections:
            connection.close()

    return [sender(c) for c in connections], close


def _aiohttp_senders(api: Api, clients: int) -> list[Send]:
    """aiohttp's client (what this script used first): ~4x the CPU per request."""

    async def send(method: str, path: str, body: Any) -> int:
        status, _ = await api.gw(method, path, body)
        return status

    return [send] * clients


async def _load(
    senders: list[Send], route: str, make: Request, seconds: float, rate: float | None = None
) -> dict:
    """Closed loop (each client sends when its previous answer is in), or with ``rate`` an
    open one: request i is due at ``i / rate`` s, on client ``i mod clients``, and its
    latency counts from when it was due, so a request that waited for its client counts
    that wait (no coordinated omission)."""
    latencies: list[float] = []
    errors = 0
    began = time.perf_counter()
    deadline = began + seconds

    async def client(k: int, send: Send) -> None:
        nonlocal errors
        n = 0
        while (now := time.perf_counter()) < deadline:
            started = now
            if rate is not None:
                started = began + (k + n * len(senders)) / rate
                if started >= deadline:
                    break
                if started > now:
                    await asyncio.sleep(started - now)
            method, path, body = make(k, n)
            n += 1
            try:
                status = await send(method, path, body)
            except (aiohttp.ClientError, HttpError, OSError, TimeoutError):
                status = 0
            latencies.append(time.perf_counter() - started)
            if not 200 <= status < 300:
                errors += 1

    await asyncio.gather(*(client(k, send) for k, send in enumerate(senders)))
    elapsed = time.perf_counter() - began
    ms = [value * 1000 for value in latencies]
    return {
        "route": route,
        "mean_ms": sum(ms) / len(ms) if ms else 0.0,
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "rps": len(ms) / elapsed,
        "requests": len(ms),
        "errors": errors,
    }


async def _sums(api: Api) -> dict[tuple[str, str], tuple[float, float]]:
    """``{(histogram, label): (sum, count)}`` of the gateway's HTTP and worker histograms."""
    assert api.http is not None
    async with api.http.get(api.gateway_url + "/metrics") as response:
        text = await response.text()
    found: dict[tuple[str, str], list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in (
            "gowa_http_request_duration_seconds",
            "gowa_worker_request_duration_seconds",
        ):
            continue
        for sample in family.samples:
            label = sample.labels.get("route") or sample.labels.get("command") or ""
            slot = found.setdefault((family.name, label), [0.0, 0.0])
            if sample.name.endswith("_sum"):
                slot[0] += sample.value
            elif sample.name.endswith("_count"):
                slot[1] += sample.value
    return {key: (total, count) for key, (total, count) in found.items()}


def _mean_ms(before: dict, after: dict, key: tuple[str, str]) -> float | None:
    total = after.get(key, (0.0, 0.0))[0] - before.get(key, (0.0, 0.0))[0]
    count = after.get(key, (0.0, 0.0))[1] - before.get(key, (0.0, 0.0))[1]
    return round(1000 * total / count, 2) if count else None


async def _bench(stack: Stack, args: argparse.Namespace) -> list[dict[str, Any]]:
    ids = session_ids(args.sessions)
    async with Api(stack.gateway_url, stack.sandbox_url, connections=args.clients) as api:
        await api.pair_many(ids)
        await asyncio.sleep(3)

        def sessions(_k: int, _n: int) -> tuple[str, str, Any]:
            return "GET", "/api/sessions", None

        def sender_to(recipient: Callable[[int], str]) -> Request:
            def send(k: int, n: int) -> tuple[str, str, Any]:
                sender = k % args.senders
                body = {"phone": f"{recipient(sender)}@s.whatsapp.net", "message": f"bench {k}/{n}"}
                return "POST", f"/api/{ids[sender]}/send/message", body

            return send

        if "contacts" in args.to:
            await api.add_phones([contact_number(n) for n in range(len(ids))])
        send_route, send_label = "POST /api/{id}/send/message", "/api/{session_id}/send/message"
        # route -> (name, recipients, request maker, the route's metrics label, worker command)
        routes = {
            "sessions": ("GET /api/sessions", None, sessions, "/api/sessions", None),
            "send:sessions": (
                send_route,
                "sessions",
                sender_to(lambda n: phone_number((n + 1) % len(ids))),
                send_label,
                "SendMessage",
            ),
            "send:contacts": (
                send_route,
                "contacts",
                sender_to(contact_number),
                send_label,
                "SendMessage",
            ),
        }
        wanted = [
            key
            for route in args.routes
            for key in ([route] if route == "sessions" else [f"send:{to}" for to in args.to])
        ]
        tree = stack.gateway_tree()
        groups = {
            "gateway": tree["gateway"],
            "loadgen": [psutil.Process()],
            "workers": tree["worker"],
            "sandbox": [psutil.Process(p.pid) for p in stack.processes if p is not stack.gateway],
        }
        rows = []
        for key in wanted:
            name, recipients, make, label, command = routes[key]
            if rows:
                await asyncio.sleep(2)  # receipts and events of the previous load settle
            close: Callable[[], None] = lambda: None  # noqa: E731
            if args.client == "lean":
                senders, close = await _lean_senders(stack.gateway_url, args.clients)
            else:
                senders = _aiohttp_senders(api, args.clients)
            if command is not None:
                # A sender's first message to its recipient fetches the device list and a
                # prekey bundle and starts a Signal session: once per contact, not per send.
                warm = range(min(len(senders), args.senders))
                await asyncio.gather(*(senders[k](*make(k, -1)) for k in warm))
                await asyncio.sleep(1)
            profiler = None
            if args.profile:
                profiler = py_spy(tree["gateway"][0].pid, key.replace(":", "-"), args.seconds)
            before = await _sums(api)
            meter = CpuMeter(groups)
            meter.start()
            row = await _load(senders, name, make, args.seconds, args.rate)
            row["to"] = recipients
            row["rate"] = args.rate
            row.update(meter.stop(row["requests"]))
            after = await _sums(api)
            http = "gowa_http_request_duration_seconds"
            row["handler_ms"] = _mean_ms(before, after, (http, label))
            if command is not None:
                worker = "gowa_worker_request_duration_seconds"
                row["worker_ms"] = _mean_ms(before, after, (worker, command))
            close()
            rows.append(row)
            if profiler is not None:
                await asyncio.to_thread(profiler.wait)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--routes", nargs="+", choices=["sessions", "send"], default=["sessions", "send"]
    )
    parser.add_argument(
        "--to",
        nargs="+",
        choices=["sessions", "contacts"],
        default=["sessions", "contacts"],
        help="recipients of the sends (one row each)",
    )
    parser.add_argument(
        "--senders",
        type=int,
        help="send from the first K sessions only (default: all); fewer, busier senders "
        "show what a send costs in a worker that is not woken from idle each time",
    )
    parser.add_argument(
        "--rate",
        type=float,
        help="open loop: this many requests per second in all, spread over the clients "
        "(default: closed loop, each client sends as soon as its last answer is in)",
    )
    parser.add_argument("--mode", choices=["zygote", "subprocess"], default="zygote")
    parser.add_argument("--sandbox", help="use this running sandbox instead of starting one")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway")
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway (slows it)")
    parser.add_argument("--client", choices=["lean", "aiohttp"], default="lean")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    args.senders = min(args.senders or args.sessions, args.sessions)
    env = {"GOWA_RATE_LIMIT": "0", "GOWA_WORKER_MODE": args.mode}
    env.update(dict(e.split("=", 1) for e in args.env))
    with Stack(gateway_env=env) as stack:
        stack.sandbox_url = args.sandbox or stack.start_sandbox()
        stack.start_gateway()
        if args.loop == "uvloop":
            rows = uvloop.run(_bench(stack, args))
        else:
            rows = asyncio.run(_bench(stack, args))
    columns = COLUMNS if args.rate is None else [*COLUMNS[:2], "rate", *COLUMNS[2:]]
    print(table(rows, columns))
    meta = {"machine": machine(), "command": " ".join(["python", *sys.argv]), **vars(args)}
    print("written to", write_result("api", rows, meta))


if __name__ == "__main__":
    main()
