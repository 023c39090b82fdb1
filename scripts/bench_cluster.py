"""Two cluster nodes on one PostgreSQL: what one-hop forwarding adds, and how long a
killed node's sessions take to come back on the other.

    python scripts/bench_cluster.py --sessions 20 --requests 2000
    python scripts/bench_cluster.py --sessions 50 --own-postgresql
    GOWA_TEST_DATABASE_URL=postgresql://postgres@db:5432/postgres python scripts/...

Makes a scratch database (``gowa_bench_<random>``) on the server at
``GOWA_TEST_DATABASE_URL`` (default: the local one), or with ``--own-postgresql`` on a
throwaway server of its own (Debian's PostgreSQL 15 binaries, ``initdb`` in a temporary
folder, a free port, ``max_connections`` of 4 per session + 100: a running session holds
about 3, more than a shared server's default 100 spares at 50 sessions), runs the
sandbox and two gateways
(nodes ``a`` and ``b``, default lease timings unless ``--lease-ttl`` and
``--renew-interval`` say otherwise) keeping their state there, and pairs N sessions on
``a`` (before ``b`` starts, so that all go there). Then:

* forwarding: R requests ``GET /api/sessions/{id}`` one after the other on one
  keep-alive connection, straight to ``a`` and through ``b`` (which forwards them to
  ``a``), alternating batches of 100 so both see the same load; p50/p95 of each and the
  difference;
* takeover: ``a`` is killed (SIGKILL); per session, the time until ``b`` runs it
  (``CONNECTED`` with a worker of ``b``'s, asked with ``X-Gowa-Forwarded-By`` so ``b``
  answers itself), p50/p95/max, and the sandbox's double-connection count.

Results: tables on stdout and ``bench-results/cluster-*.json``; the database is dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import (
    Api,
    Stack,
    machine,
    percentile,
    scratch_database,
    session_ids,
    table,
    write_result,
)

from tests.pgserver import PgServer

LOCAL = {"X-Gowa-Forwarded-By": "bench"}


async def _latencies(http: aiohttp.ClientSession, url: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        async with http.get(url) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"{url}: HTTP {response.status}")
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _forwarding(a: str, b: str, session_id: str, requests: int) -> list[dict[str, Any]]:
    direct: list[float] = []
    forwarded: list[float] = []
    connector = aiohttp.TCPConnector(limit=1)
    async with (
        aiohttp.ClientSession(connector=connector) as one,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as other,
    ):
        path = f"/api/sessions/{session_id}"
        await _latencies(one, a + path, 50)  # warm both paths up
        await _latencies(other, b + path, 50)
        for _ in range(max(1, requests // 100)):
            direct += await _latencies(one, a + path, 100)
            forwarded += await _latencies(other, b + path, 100)
    rows = []
    for name, values in (("direct to a", direct), ("through b", forwarded)):
        rows.append(
            {
                "path": name,
                "requests": len(values),
                "p50_ms": round(percentile(values, 50), 2),
                "p95_ms": round(percentile(values, 95), 2),
            }
        )
    rows.append(
        {
            "path": "added by forwarding",
            "requests": "",
            "p50_ms": round(rows[1]["p50_ms"] - rows[0]["p50_ms"], 2),
            "p95_ms": round(rows[1]["p95_ms"] - rows[0]["p95_ms"], 2),
        }
    )
    return rows


async def _takeover(stack: Stack, node_a: Any, b: str, ids: list[str]) -> dict[str, Any]:
    os.killpg(node_a.pid, signal.SIGKILL)
    killed = time.monotonic()
    back: dict[str, float] = {}
    async with aiohttp.ClientSession(headers=LOCAL) as http:
        while len(back) < len(ids) and time.monotonic() - killed < 300:
            for session_id in ids:
                if session_id in back:
                    continue
                async with http.get(f"{b}/api/sessions/{session_id}") as response:
                    body = await response.json()
                session = body["results"]
                if session["status"] == "CONNECTED" and session["worker"]["pid"]:
                    back[session_id] = time.monotonic() - killed
            await asyncio.sleep(0.1)
        async with http.get(f"{stack.sandbox_url}/sim/healthz") as response:
            replaced = (await response.json())["replaced"]
    times = list(back.values())
    return {
        "sessions": len(ids),
        "back": len(times),
        "p50_s": round(percentile(times, 50), 1) if times else None,
        "p95_s": round(percentile(times, 95), 1) if times else None,
        "max_s": round(max(times), 1) if times else None,
        "double_connections": replaced,
    }


async def _measure(database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    env = {
        "GOWA_DATABASE_URL": database_url,
        "GOWA_LEASE_TTL": str(args.lease_ttl),
        "GOWA_LEASE_RENEW_INTERVAL": str(args.renew_interval),
    }
    with Stack(gateway_env=env) as stack:
        stack.start_sandbox()
        a = stack.start_gateway(name="a", env={"GOWA_NODE_ID": "a"})
        node_a = stack.gateway
        ids = session_ids(args.sessions, prefix="k")
        async with Api(a, stack.sandbox_url) as api:
            await api.pair_many(ids)
        # Only now: with b up, a would place half the new sessions on b.
        b = stack.start_gateway(name="b", env={"GOWA_NODE_ID": "b"})
        await asyncio.sleep(2 * args.renew_interval)  # b learns where they run
        forwarding = await _forwarding(a, b, ids[0], args.requests)
        takeover = await _takeover(stack, node_a, b, ids)
    return {"forwarding": forwarding, "takeover": takeover}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--lease-ttl", type=float, default=15.0)
    parser.add_argument("--renew-interval", type=float, default=5.0)
    parser.add_argument(
        "--own-postgresql",
        action="store_true",
        help="run on a throwaway PostgreSQL server of the benchmark's own",
    )
    args = parser.parse_args()
    server = None
    if args.own_postgresql:
        server = PgServer(max_connections=4 * args.sessions + 100).init()
        server.start()
        os.environ["GOWA_TEST_DATABASE_URL"] = server.url
    try:
        with scratch_database() as database:
            result = asyncio.run(_measure(database.url, args))
    finally:
        if server is not None:
            server.close()
    print(table(result["forwarding"], ["path", "requests", "p50_ms", "p95_ms"]))
    print()
    print(table([result["takeover"]], list(result["takeover"])))
    write_result("cluster", result, {"machine": machine(), **vars(args)})


if __name__ == "__main__":
    main()
