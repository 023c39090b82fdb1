"""API latency under load: C concurrent clients against a gateway with N connected sessions.

    python scripts/bench_api.py --sessions 50 --clients 50 --seconds 20
    python scripts/bench_api.py --routes sessions --profile   # + py-spy of the gateway

Pairs N sessions through a sandbox, then for each route runs C clients in a closed loop
(each sends its next request when the previous one is answered) for S seconds:
``GET /api/sessions`` and ``POST /api/{id}/send/message`` (client k sends from session
k mod N to the next session's phone). Any non-2xx answer or transport error counts as an
error. The gateway runs with ``GOWA_RATE_LIMIT=0``: the per-client rate limit (20/s by
default) would otherwise answer most of the load with 429.

Per route the CPU used by the gateway, the load generator (this process), the workers
and the sandbox is reported in % of one core, so a run shows who the two cores went to.
``--profile`` records the gateway with py-spy (``bench-results/profile-<route>.txt``,
collapsed stacks): it slows the gateway, so its latencies are not comparable.
Results: a table on stdout and ``bench-results/api-*.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import psutil
from benchlib import (
    RESULTS,
    Api,
    Stack,
    machine,
    percentile,
    phone_number,
    session_ids,
    table,
    write_result,
)

COLUMNS = [
    "route",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "rps",
    "errors",
    "gateway_cpu",
    "loadgen_cpu",
    "workers_cpu",
    "sandbox_cpu",
]

Request = Callable[[int, int], tuple[str, str, Any]]


class CpuMeter:
    """CPU seconds of process groups between :meth:`start` and :meth:`stop`, in % of a core."""

    def __init__(self, groups: dict[str, list[psutil.Process]]) -> None:
        self.groups = groups
        self._before: dict[str, float] = {}
        self._started = 0.0

    def _total(self, processes: list[psutil.Process]) -> float:
        total = 0.0
        for process in processes:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def start(self) -> None:
        self._before = {name: self._total(group) for name, group in self.groups.items()}
        self._started = time.monotonic()

    def stop(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._started
        return {
            f"{name}_cpu": round(100 * (self._total(group) - self._before[name]) / elapsed, 1)
            for name, group in self.groups.items()
        }


async def _load(api: Api, route: str, make: Request, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def client(k: int) -> None:
        nonlocal errors
        n = 0
        while time.monotonic() < deadline:
            method, path, body = make(k, n)
            n += 1
            started = time.perf_counter()
            try:
                status, _ = await api.gw(method, path, body)
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            latencies.append(time.perf_counter() - started)
            if not 200 <= status < 300:
                errors += 1

    started = time.monotonic()
    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.monotonic() - started
    ms = [value * 1000 for value in latencies]
    return {
        "route": route,
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "rps": len(ms) / elapsed,
        "errors": errors,
    }


def _py_spy(pid: int, name: str, seconds: float) -> subprocess.Popen[bytes]:
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"profile-{name}.txt"
    args = ["py-spy", "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200"]
    args += ["-f", "raw", "-o", str(out), "--nonblocking"]
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '')}"}
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _bench(stack: Stack, args: argparse.Namespace) -> list[dict[str, Any]]:
    ids = session_ids(args.sessions)
    async with Api(stack.gateway_url, stack.sandbox_url, connections=args.clients) as api:
        await api.pair_many(ids)
        await asyncio.sleep(3)

        def sessions(_k: int, _n: int) -> tuple[str, str, Any]:
            return "GET", "/api/sessions", None

        def send(k: int, n: int) -> tuple[str, str, Any]:
            sender = k % len(ids)
            to = phone_number((sender + 1) % len(ids))
            body = {"phone": f"{to}@s.whatsapp.net", "message": f"bench {k}/{n}"}
            return "POST", f"/api/{ids[sender]}/send/message", body

        routes = {
            "sessions": ("GET /api/sessions", sessions),
            "send": ("POST /api/{id}/send/message", send),
        }
        tree = stack.gateway_tree()
        groups = {
            "gateway": tree["gateway"],
            "loadgen": [psutil.Process()],
            "workers": tree["worker"],
            "sandbox": [psutil.Process(p.pid) for p in stack.processes if p is not stack.gateway],
        }
        rows = []
        for key in args.routes:
            name, make = routes[key]
            profiler = _py_spy(tree["gateway"][0].pid, key, args.seconds) if args.profile else None
            meter = CpuMeter(groups)
            meter.start()
            row = await _load(api, name, make, args.clients, args.seconds)
            row.update(meter.stop())
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
    parser.add_argument("--mode", choices=["zygote", "subprocess"], default="zygote")
    parser.add_argument("--sandbox", help="use this running sandbox instead of starting one")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway")
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway (slows it)")
    args = parser.parse_args()
    env = {"GOWA_RATE_LIMIT": "0", "GOWA_WORKER_MODE": args.mode}
    env.update(dict(e.split("=", 1) for e in args.env))
    with Stack(gateway_env=env) as stack:
        stack.sandbox_url = args.sandbox or stack.start_sandbox()
        stack.start_gateway()
        rows = asyncio.run(_bench(stack, args))
    print(table(rows, COLUMNS))
    meta = {"machine": machine(), "command": " ".join(["python", *sys.argv]), **vars(args)}
    print("written to", write_result("api", rows, meta))


if __name__ == "__main__":
    main()
