"""PostgreSQL connections a gateway and its workers hold, idle and while messages flow,
directly or through PgBouncer.

    python scripts/bench_pg_connections.py --sessions 10
    python scripts/bench_pg_connections.py --sessions 200 --pooler --server-connections 40
    GOWA_TEST_DATABASE_URL=postgresql://postgres@db:5432/postgres python scripts/...

Makes a scratch database (``gowa_bench_<random>``) on the server at
``GOWA_TEST_DATABASE_URL`` (default: the local one), runs the sandbox and a gateway
keeping its state there, pairs N sessions, and reads ``pg_stat_activity``: idle (5 s and
45 s after the last pairing), and at its highest while the sessions send messages to the
next one (``--concurrency`` sends at a time, each one's latency measured), with the
server logins and commits per second (``pg_stat_database``) meanwhile. Directly,
connections are told apart by ``application_name`` (``gowa-gateway``,
``gowa-worker <id>``, ``gowa-whatsmeow <id>``); with ``--pooler``, the workers go
through a PgBouncer of the benchmark's own (config/pgbouncer as shipped,
``max_db_connections`` = ``--server-connections``, tests/pgbouncer.py), and the
sessions' server connections are those of their roles (``gowa_r_*``). Results: a table
on stdout and ``bench-results/pg-connections-*.json``; the database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    Api,
    ScratchDatabase,
    Stack,
    machine,
    percentile,
    phone_number,
    scratch_database,
    session_ids,
    table,
    write_result,
)

from tests.pgbouncer import PgBouncer

#: Seconds more of idling before the second idle reading.
SETTLE_S = 40
COLUMNS = [
    "phase",
    "sessions",
    "connected",
    "gateway",
    "workers",
    "whatsmeow",
    "session_roles",
    "per_session",
    "total",
    "logins_per_s",
    "commits_per_s",
    "sends",
    "send_p50_ms",
    "send_p95_ms",
]


def _counts(url: str, database: str) -> Counter[str]:
    """Server connections to ``database``: by ``application_name``'s first word, and
    ``roles`` for those logged in as a session's role (a worker's, direct or pooled)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT application_name, usename FROM pg_stat_activity WHERE datname = %s",
            [database],
        ).fetchall()
    counts: Counter[str] = Counter()
    for name, user in rows:
        counts[str(name).split(" ")[0]] += 1
        counts["roles"] += str(user).startswith("gowa_r_")
        counts["total"] += 1
    return counts


def _activity(url: str, database: str) -> tuple[float, int, int]:
    """(now, server logins so far, commits so far) of ``database``: a pooler that hands
    a session's slot to another's opens a new server connection, which counts here."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT sessions, xact_commit FROM pg_stat_database WHERE datname = %s", [database]
        ).fetchone()
    assert row is not None
    return time.monotonic(), int(row[0]), int(row[1])


def _rates(since: tuple[float, int, int], until: tuple[float, int, int]) -> dict[str, float]:
    seconds = max(until[0] - since[0], 1e-9)
    return {
        "logins_per_s": round((until[1] - since[1]) / seconds, 1),
        "commits_per_s": round((until[2] - since[2]) / seconds, 1),
    }


def _row(
    phase: str, sessions: int, connected: int, counts: Counter[str], sends: list[float]
) -> dict[str, Any]:
    return {
        "phase": phase,
        "sessions": sessions,
        "connected": connected,
        "gateway": counts["gowa-gateway"],
        "workers": counts["gowa-worker"],
        "whatsmeow": counts["gowa-whatsmeow"],
        "session_roles": counts["roles"],
        "per_session": round(counts["roles"] / max(1, sessions), 2),
        "total": counts["total"],
        "sends": len(sends),
        "send_p50_ms": round(percentile(sends, 50) * 1000, 1) if sends else None,
        "send_p95_ms": round(percentile(sends, 95) * 1000, 1) if sends else None,
    }


async def _connected(api: Api, ids: list[str]) -> int:
    states = await asyncio.gather(*(api.status(sid) for sid in ids))
    return sum(state == "CONNECTED" for state in states)


async def _measure(
    database: ScratchDatabase,
    sessions: int,
    seconds: float,
    pooler_url: str | None,
    parallel: int,
    concurrency: int,
) -> list[dict]:
    env = {"GOWA_DATABASE_URL": database.url}
    if pooler_url:
        env["GOWA_DATABASE_POOLER_URL"] = pooler_url
    with Stack(gateway_env=env) as stack:
        stack.start_sandbox()
        stack.start_gateway()
        ids = session_ids(sessions, prefix="c")
        async with Api(stack.gateway_url, stack.sandbox_url) as api:
            await api.pair_many(ids, parallel)
            await asyncio.sleep(5)
            idle = _counts(database.server, database.name)
            rows = [_row("idle", sessions, await _connected(api, ids), idle, [])]
            # PgBouncer closes server connections idle for server_idle_timeout (30 s).
            since = _activity(database.server, database.name)
            await asyncio.sleep(SETTLE_S)
            rates = _rates(since, _activity(database.server, database.name))
            idle = _counts(database.server, database.name)
            row = _row(f"idle {SETTLE_S + 5} s", sessions, await _connected(api, ids), idle, [])
            rows.append({**row, **rates})
            peak: Counter[str] = Counter()
            latencies: list[float] = []
            failed: Counter[str] = Counter()
            deadline = time.monotonic() + seconds

            async def send(first: int) -> None:
                """Sends from sessions first, first + concurrency, ... in turn, each to
                the next session, one at a time."""
                n = first
                while time.monotonic() < deadline:
                    body = {"phone": phone_number((n + 1) % sessions), "message": "x"}
                    started = time.perf_counter()
                    status, answer = await api.gw("POST", f"/api/{ids[n]}/send/message", body)
                    if status == 200:
                        latencies.append(time.perf_counter() - started)
                    else:
                        code = answer.get("code") if isinstance(answer, dict) else None
                        failed[f"{status} {code}"] += 1
                    n = (n + concurrency) % sessions

            since = _activity(database.server, database.name)
            senders = asyncio.gather(*(send(k) for k in range(concurrency)))
            while time.monotonic() < deadline:
                now = _counts(database.server, database.name)
                if now["roles"] > peak["roles"]:
                    peak = now
                await asyncio.sleep(0.1)
            await senders
            rates = _rates(since, _activity(database.server, database.name))
            row = _row("sending", sessions, await _connected(api, ids), peak, latencies)
            rows.append({**row, **rates, "concurrency": concurrency, "failed_sends": dict(failed)})
    return rows


@contextlib.contextmanager
def _pooler(database: ScratchDatabase, server_connections: int) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(database.url, max_db_connections=server_connections).start()
    try:
        yield bouncer
    finally:
        bouncer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10, help="how long messages flow")
    parser.add_argument("--pooler", action="store_true", help="workers through PgBouncer")
    parser.add_argument(
        "--server-connections", type=int, default=40, help="PgBouncer's max_db_connections"
    )
    parser.add_argument(
        "--concurrency", type=int, default=0, help="sends at once [default: every session]"
    )
    parser.add_argument("--pair-parallel", type=int, default=10, help="sessions paired at once")
    args = parser.parse_args()
    with scratch_database() as database, contextlib.ExitStack() as stack:
        with psycopg.connect(database.server) as conn:
            max_connections = int((conn.execute("SHOW max_connections").fetchone() or [0])[0])
        pooler_url = None
        if args.pooler:
            pooler_url = stack.enter_context(_pooler(database, args.server_connections)).url
        rows = asyncio.run(
            _measure(
                database,
                args.sessions,
                args.seconds,
                pooler_url,
                args.pair_parallel,
                min(args.concurrency or args.sessions, args.sessions),
            )
        )
    print(table(rows, COLUMNS))
    meta = {"machine": machine(), "max_connections": max_connections, **vars(args)}
    write_result("pg-connections", rows, meta)


if __name__ == "__main__":
    main()
