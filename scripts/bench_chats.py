"""``GET /chats`` with many chats: what taking each chat's archived and pinned state from
whatsmeow costs.

    python scripts/bench_chats.py --chats 100 1000 5000 --requests 50 --storage sqlite postgresql

For each storage backend (``postgresql``: a scratch database on the server at
GOWA_TEST_DATABASE_URL, the tests' kind, as ``GOWA_DATABASE_URL``, dropped afterwards),
pairs one session with a sandbox phone; then, for each size, the phone sends the session
a history sync that brings its chat store to that many chats (one message each) and
archives ``--archived`` of them (app-state patches whatsmeow applies to its chat
settings), and the script times R sequential ``GET /api/{id}/chats?limit=25`` (each
first brings the chats' ``archived`` and ``pinned`` up to whatsmeow's chat settings:
``workers/operations/chatsettings.py``) and, as the floor, R
``GET /api/{id}/chat/{jid}/messages?limit=25`` of one chat (that chat's settings only),
once the gateway and the worker are idle again.
Latency is request sent -> answer read, one request at a time (``GOWA_RATE_LIMIT=0``: the
per-session limit would answer most of them with 429). Results: a table on stdout and
``bench-results/chats-*.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    Api,
    Stack,
    machine,
    percentile,
    phone_number,
    scratch_database,
    table,
    write_result,
)

COLUMNS = [
    "storage",
    "chats",
    "archived",
    "chats_p50_ms",
    "chats_p95_ms",
    "one_chat_p50_ms",
    "per_chat_us",
]
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


async def _archive(api: Api, phone: str, chats: range) -> None:
    """The phone archives these chats; wait until whatsmeow applied the last one."""
    for n in chats:
        body = {"chat": _jid(n), "archived": True}
        status, answer = await api.sim("POST", f"/sim/phones/{phone}/chat-settings", body)
        if status != 200:
            raise RuntimeError(f"chat-settings: {status} {answer}")
    if not chats:
        return
    deadline = time.monotonic() + 120
    path = f"/api/{SESSION}/chat/{_jid(chats[-1])}/messages?limit=1"
    while time.monotonic() < deadline:
        status, answer = await api.gw("GET", path)
        if status == 200 and answer["results"]["chat_info"]["archived"]:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("the phone's archive did not reach the chat store")


async def _idle(servers: Stack, timeout: float = 300) -> None:
    """Wait until the gateway and its worker use under 5 % of a core over a second: they
    still handle a history sync's messages after its chats show, which would slow the
    requests timed next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes = [p for group in servers.gateway_tree().values() for p in group]
        before = sum(sum(p.cpu_times()[:2]) for p in processes)
        await asyncio.sleep(1)
        if sum(sum(p.cpu_times()[:2]) for p in processes) - before < 0.05:
            return
    raise TimeoutError("the gateway and its worker did not go idle")


async def _times(api: Api, path: str, requests: int) -> list[float]:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        status, body = await api.gw("GET", path)
        times.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body}")
    return times


async def run(storage: str, sizes: list[int], requests: int, archived: int) -> list[dict[str, Any]]:
    rows = []
    with contextlib.ExitStack() as stack:
        env = {"GOWA_RATE_LIMIT": "0"}
        if storage == "postgresql":
            env["GOWA_DATABASE_URL"] = stack.enter_context(scratch_database()).url
        servers = stack.enter_context(Stack(gateway_env=env))
        servers.start_sandbox()
        servers.start_gateway()
        async with Api(servers.gateway_url, servers.sandbox_url) as api:
            phone = phone_number(0)
            await api.pair(SESSION, phone)
            have = 0
            for size in sorted(sizes):
                await _fill(api, phone, have, size)
                await _archive(api, phone, range(min(have, archived), min(size, archived)))
                have = size
                await _idle(servers)
                listed = await _times(api, f"/api/{SESSION}/chats?limit=25", requests)
                one = await _times(
                    api, f"/api/{SESSION}/chat/{_jid(0)}/messages?limit=25", requests
                )
                chats_p50, one_p50 = percentile(listed, 50), percentile(one, 50)
                rows.append(
                    {
                        "storage": storage,
                        "chats": size,
                        "archived": min(size, archived),
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
    parser.add_argument(
        "--archived", type=int, default=20, help="chats the phone archives (the first ones)"
    )
    parser.add_argument(
        "--storage", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite"]
    )
    args = parser.parse_args()
    rows = []
    for storage in args.storage:
        rows += asyncio.run(run(storage, args.chats, args.requests, args.archived))
    print(table(rows, COLUMNS))
    write_result("chats", rows, {"machine": machine(), "argv": sys.argv})


if __name__ == "__main__":
    main()
