"""PostgreSQL connections a gateway and its workers hold, idle and while messages flow.

    python scripts/bench_pg_connections.py --sessions 10
    GOWA_TEST_DATABASE_URL=postgresql://postgres@db:5432/postgres python scripts/...

Makes a scratch database (``gowa_bench_<random>``) on the server at
``GOWA_TEST_DATABASE_URL`` (default: the local one), runs the sandbox and a gateway
keeping its state there, pairs N sessions, and reads ``pg_stat_activity`` by
``application_name`` (``gowa-gateway``, ``gowa-worker <id>``, ``gowa-whatsmeow <id>``):
once idle, and at its highest while every session sends messages to the next one.
Results: a table on stdout and ``bench-results/pg-connections-*.json``; the database is
dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    Api,
    ScratchDatabase,
    Stack,
    machine,
    phone_number,
    scratch_database,
    session_ids,
    table,
    write_result,
)

COLUMNS = ["phase", "sessions", "gateway", "workers", "whatsmeow", "per_session", "total"]


def _counts(url: str, database: str) -> Counter[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT application_name FROM pg_stat_activity WHERE datname = %s", [database]
        ).fetchall()
    return Counter(str(name).split(" ")[0] for (name,) in rows)


def _row(phase: str, sessions: int, counts: Counter[str]) -> dict[str, Any]:
    gateway, workers = counts["gowa-gateway"], counts["gowa-worker"]
    whatsmeow = counts["gowa-whatsmeow"]
    return {
        "phase": phase,
        "sessions": sessions,
        "gateway": gateway,
        "workers": workers,
        "whatsmeow": whatsmeow,
        "per_session": round((workers + whatsmeow) / max(1, sessions), 2),
        "total": gateway + workers + whatsmeow,
    }


async def _measure(database: ScratchDatabase, sessions: int, seconds: float) -> list[dict]:
    with Stack(gateway_env={"GOWA_DATABASE_URL": database.url}) as stack:
        stack.start_sandbox()
        stack.start_gateway()
        ids = session_ids(sessions, prefix="c")
        async with Api(stack.gateway_url, stack.sandbox_url) as api:
            await api.pair_many(ids)
            await asyncio.sleep(5)
            rows = [_row("idle", sessions, _counts(database.server, database.name))]
            peak: Counter[str] = Counter()
            deadline = time.monotonic() + seconds

            async def send(n: int, session_id: str) -> None:
                to = phone_number((n + 1) % sessions)
                while time.monotonic() < deadline:
                    await api.gw(
                        "POST", f"/api/{session_id}/send/message", {"phone": to, "message": "x"}
                    )

            senders = asyncio.gather(*(send(n, sid) for n, sid in enumerate(ids)))
            while time.monotonic() < deadline:
                now = _counts(database.server, database.name)
                if sum(now.values()) > sum(peak.values()):
                    peak = now
                await asyncio.sleep(0.1)
            await senders
            rows.append(_row("sending", sessions, peak))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10, help="how long messages flow")
    args = parser.parse_args()
    with scratch_database() as database:
        rows = asyncio.run(_measure(database, args.sessions, args.seconds))
    print(table(rows, COLUMNS))
    write_result("pg-connections", rows, {"machine": machine(), **vars(args)})


if __name__ == "__main__":
    main()
