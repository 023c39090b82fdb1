"""Start-up latency: N paired sessions started at once, and a fresh session to its first QR.

    python scripts/bench_start.py --sessions 50
    python scripts/bench_start.py --sessions 50 --mode subprocess

Pairs N sessions through a sandbox, stops them all, then sends the N start requests at
once and records, per session, the time from its start request to CONNECTED (read from
``GET /api/sessions`` every 25 ms: one request for all sessions, so the observer does not
load the gateway). Then creates ``--fresh`` new sessions one by one and times
``POST /api/sessions`` -> ``GET /api/{id}/app/login`` returning a QR code.
Results: a table on stdout and ``bench-results/start-*.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import Api, Stack, machine, percentile, session_ids, table, write_result

COLUMNS = ["mode", "sessions", "p50_s", "p95_s", "max_s", "first_qr_p50_s", "first_qr_max_s"]


async def _start_all(api: Api, ids: list[str], timeout: float) -> list[float]:
    pending = set(ids)
    sent: dict[str, float] = {}
    took: dict[str, float] = {}

    async def start(session_id: str) -> None:
        sent[session_id] = time.monotonic()
        status, body = await api.gw("POST", f"/api/sessions/{session_id}/start")
        if status != 200:
            raise RuntimeError(f"start {session_id}: {status} {body}")

    starts = asyncio.gather(*(start(sid) for sid in ids))
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        status, body = await api.gw("GET", "/api/sessions")
        now = time.monotonic()
        for session in body["results"] if status == 200 else []:
            sid = session["id"]
            if sid in pending and session["status"] == "CONNECTED" and sid in sent:
                took[sid] = now - sent[sid]
                pending.discard(sid)
        await asyncio.sleep(0.025)
    await starts
    if pending:
        raise TimeoutError(f"{len(pending)} session(s) not CONNECTED after {timeout} s")
    return [took[sid] for sid in ids]


async def _first_qr(api: Api, count: int) -> list[float]:
    times = []
    for n in range(count):
        session_id = f"fresh{n}"
        started = time.monotonic()
        await api.create(session_id)
        await api.wait_qr(session_id, 30)
        times.append(time.monotonic() - started)
        await api.gw("POST", f"/api/sessions/{session_id}/stop")
    return times


async def _bench(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    ids = session_ids(args.sessions)
    async with Api(stack.gateway_url, stack.sandbox_url) as api:
        await api.pair_many(ids)
        await asyncio.gather(*(api.gw("POST", f"/api/sessions/{sid}/stop") for sid in ids))
        await asyncio.gather(*(api.wait_status(sid, {"STOPPED"}, 60, 0.2) for sid in ids))
        await asyncio.sleep(2)
        times = await _start_all(api, ids, 120)
        await asyncio.sleep(1)
        qr_times = await _first_qr(api, args.fresh)
    return {
        "mode": args.mode,
        "sessions": args.sessions,
        "p50_s": percentile(times, 50),
        "p95_s": percentile(times, 95),
        "max_s": max(times),
        "first_qr_p50_s": percentile(qr_times, 50),
        "first_qr_max_s": max(qr_times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--fresh", type=int, default=5, help="fresh sessions timed to first QR")
    parser.add_argument("--mode", choices=["zygote", "subprocess"], default="zygote")
    parser.add_argument("--sandbox", help="use this running sandbox instead of starting one")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway")
    args = parser.parse_args()
    env = {"GOWA_WORKER_MODE": args.mode, **dict(e.split("=", 1) for e in args.env)}
    with Stack(gateway_env=env) as stack:
        stack.sandbox_url = args.sandbox or stack.start_sandbox()
        stack.start_gateway()
        row = asyncio.run(_bench(stack, args))
    print(table([row], COLUMNS))
    meta = {"machine": machine(), "command": " ".join(["python", *sys.argv]), **vars(args)}
    print("written to", write_result("start", row, meta))


if __name__ == "__main__":
    main()
