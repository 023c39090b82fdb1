"""``GET /chats`` with many chats: what taking each chat's archived and pinned state from
whatsmeow costs.

    python scripts/bench_chats.py --chats 100 1000 5000 --requests 50

Pairs one session with a sandbox phone; then, for each size, the phone sends the session
a history sync that brings its chat store to that many chats (one message each), and the
script times R sequential ``GET /api/{id}/chats?limit=25`` (each first brings every
chat's ``archived`` and ``pinned`` up to whatsmeow's chat settings, one lookup per chat:
``workers/operations/chatsettings.py``) and, as the floor, R
``GET /api/{id}/chat/{jid}/messages?limit=25`` of one chat (one lookup). Latency is
request sent -> answer read, one request at a time (``GOWA_RATE_LIMIT=0``: the per-session
limit would answer most of them with 429). Results: a table on stdout and
``bench-results/chats-*.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import Api, Stack, machine, percentile, phone_number, table, write_result

COLUMNS = ["chats", "chats_p50_ms", "chats_p95_ms", "one_chat_p50_ms", "per_chat_us"]
SESSION = "chats"


def _jid(n: int) -> str:
    return f"1777{n:07d}@s.whatsapp.net"


async def _fill(api: Api, phone: str, have: int, want: int) -> None:
    """The phone's history sync of chats ``have`` .. ``want`` - 1; wait until stored."""
    chats = [
        {
            "jid": _jid(n),
            "name": f"Chat {n}",
            "messages": [{"id": f"B{n}", "from_me": False, "text": "hi", "t": 1764800000 + n}],
        }
        for n in range(have, want)
    ]
    status, body = await api.sim("POST", f"/sim/phones/{phone}/history", {"chats": chats})
    if status != 200:
        raise RuntimeError(f"history sync: {status} {body}")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status, body = await api.gw("GET", f"/api/{SESSION}/chats?limit=1")
        if status == 200 and body["results"]["pagination"]["total"] >= want:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"the chat store did not reach {want} chats")


async def _times(api: Api, path: str, requests: int) -> list[float]:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        status, body = await api.gw("GET", path)
        times.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body}")
    return times


async def run(sizes: list[int], requests: int) -> list[dict[str, Any]]:
    rows = []
    with Stack(gateway_env={"GOWA_RATE_LIMIT": "0"}) as stack:
        stack.start_sandbox()
        stack.start_gateway()
        async with Api(stack.gateway_url, stack.sandbox_url) as api:
            phone = phone_number(0)
            await api.pair(SESSION, phone)
            have = 0
            for size in sorted(sizes):
                await _fill(api, phone, have, size)
                have = size
                listed = await _times(api, f"/api/{SESSION}/chats?limit=25", requests)
                one = await _times(
                    api, f"/api/{SESSION}/chat/{_jid(0)}/messages?limit=25", requests
                )
                chats_p50, one_p50 = percentile(listed, 50), percentile(one, 50)
                rows.append(
                    {
                        "chats": size,
                        "chats_p50_ms": chats_p50 * 1000,
                        "chats_p95_ms": percentile(listed, 95) * 1000,
                        "one_chat_p50_ms": one_p50 * 1000,
                        "per_chat_us": (chats_p50 - one_p50) / size * 1e6,
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    rows = asyncio.run(run(args.chats, args.requests))
    print(table(rows, COLUMNS))
    write_result("chats", rows, {"machine": machine(), "argv": sys.argv})


if __name__ == "__main__":
    main()
