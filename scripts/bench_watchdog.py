"""How long a frozen (SIGSTOP) worker takes to be replaced with the default health settings.

    python scripts/bench_watchdog.py --sessions 6
    python scripts/bench_watchdog.py --sessions 6 --env GOWA_HEALTH_INTERVAL=2

Starts a gateway without a sandbox (its workers sit in DISCONNECTED retrying their dial,
which is all the watchdog needs), creates N sessions, freezes each worker at a random
moment of its health-ping cycle and records the seconds from SIGSTOP to the replacement
worker's hello (its pid in ``GET /api/sessions/{id}``). The watchdog's bounds follow from
the settings: the first unanswered ping starts within ``health_interval`` s, and each of
``health_failures`` pings waits ``health_timeout`` s, with ``health_interval`` s between
them. Results: a table on stdout and ``bench-results/watchdog-*.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import Api, Stack, machine, percentile, session_ids, table, write_result

COLUMNS = ["sessions", "min_s", "p50_s", "max_s", "bound_low_s", "bound_high_s"]


async def _pid(api: Api, session_id: str) -> int | None:
    status, body = await api.gw("GET", f"/api/sessions/{session_id}")
    return body["results"]["worker"]["pid"] if status == 200 else None


async def _freeze_and_time(api: Api, session_id: str, spread: float) -> float:
    while (pid := await _pid(api, session_id)) is None:
        await asyncio.sleep(0.05)
    await asyncio.sleep(random.uniform(0, spread))
    os.kill(pid, signal.SIGSTOP)
    frozen = time.monotonic()
    while await _pid(api, session_id) in (None, pid):
        await asyncio.sleep(0.05)
    return time.monotonic() - frozen


async def run(sessions: int, env: dict[str, str]) -> dict[str, Any]:
    interval = float(env.get("GOWA_HEALTH_INTERVAL", 5))
    timeout = float(env.get("GOWA_HEALTH_TIMEOUT", 3))
    failures = int(env.get("GOWA_HEALTH_FAILURES", 3))
    with Stack(gateway_env=env) as stack:
        stack.start_gateway()
        async with Api(stack.gateway_url, None) as api:
            ids = session_ids(sessions, "w")
            for session_id in ids:
                await api.create(session_id)
            # Let every worker finish starting, so the first ping cycle is a steady one.
            await asyncio.sleep(interval + 1)
            times = await asyncio.gather(
                *(_freeze_and_time(api, session_id, interval) for session_id in ids)
            )
    return {
        "sessions": sessions,
        "times_s": [round(t, 2) for t in times],
        "min_s": min(times),
        "p50_s": percentile(times, 50),
        "max_s": max(times),
        "bound_low_s": (failures - 1) * interval + failures * timeout,
        "bound_high_s": failures * interval + failures * timeout,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    result = asyncio.run(run(args.sessions, env))
    print(table([result], COLUMNS))
    print("each:", result["times_s"])
    write_result("watchdog", result, {"machine": machine(), "argv": sys.argv, "env": env})


if __name__ == "__main__":
    main()
