"""API latency under load: C concurrent clients against a gateway with N connected sessions.

    python scripts/bench_api.py --sessions 50 --clients 50 --seconds 30

Pairs N sessions through a sandbox, then for each route runs C clients in a closed loop
(each sends its next request when the previous one is answered) for S seconds:
``GET /api/sessions`` and ``POST /api/{id}/send/message`` (client k sends from session
k mod N to the next session's phone). Any non-2xx answer or transport error counts as an
error. The gateway runs with ``GOWA_RATE_LIMIT=0``: the per-client rate limit (20/s by
default) would otherwise answer most of the load with 429.
Results: a table on stdout and ``bench-results/api-*.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
from benchlib import (
    Api,
    Stack,
    machine,
    percentile,
    phone_number,
    session_ids,
    table,
    write_result,
)

COLUMNS = ["route", "p50_ms", "p95_ms", "p99_ms", "rps", "errors"]

Request = Callable[[int, int], tuple[str, str, Any]]


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

        rows = [await _load(api, "GET /api/sessions", sessions, args.clients, args.seconds)]
        rows.append(
            await _load(api, "POST /api/{id}/send/message", send, args.clients, args.seconds)
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--mode", choices=["zygote", "subprocess"], default="zygote")
    parser.add_argument("--sandbox", help="use this running sandbox instead of starting one")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway")
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
