"""How long a session event takes from one cluster node to another through PostgreSQL.

    python scripts/bench_cluster_events.py --rate 200 --seconds 10 --burst 10000

Makes a scratch database (``gowa_bench_<random>``) on the server at
``GOWA_TEST_DATABASE_URL`` (default: the local one) and runs two nodes' event relays
(``gowa_py/cluster/relay.py``, their real connections) in this process: node ``a`` sends
events, node ``b`` receives them. Measured: the time from ``a`` handing an event to its
relay until ``b`` delivers it, for small events (a text message's size) at ``--rate`` per
second and for large ones (20 kB, stored in ``event_relay``) at a tenth of that; then a
burst of ``--burst`` small events at once (at most the relay's queue, 10000: beyond it
the oldest are dropped), and how many per second get through.
Results: a table on stdout and ``bench-results/cluster-events-*.json``; the database is
dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import machine, percentile, scratch_database, table, write_result

from gowa_py import protocol as p
from gowa_py.cluster.relay import QUEUE_SIZE, EventRelay, RemoteEvent
from gowa_py.eventbody import EventBody
from gowa_py.storage.factory import PostgresStorage

COLUMNS = ["kind", "bytes", "events", "received", "p50_ms", "p95_ms", "max_ms", "per_s"]


def _body(n: int, text: str) -> EventBody:
    event = p.Event(
        id=f"bench-{n}",
        session_id="bench",
        name="message",
        timestamp=time.time(),
        payload={"from": "15550000001@s.whatsapp.net", "message": {"text": text}},
    )
    return EventBody(event, None)


class Timing:
    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.latency: list[float] = []
        self.last = 0.0

    async def deliver(self, event: RemoteEvent) -> None:
        self.last = time.perf_counter()
        self.latency.append(self.last - self.sent[event.id])

    async def gap(self, since: float, until: float) -> None:
        raise RuntimeError(f"a listener dropped during the benchmark ({since}-{until})")


async def _paced(a: EventRelay, timing: Timing, first: int, count: int, rate: float, text: str):
    start = time.perf_counter()
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        body = _body(first + i, text)
        timing.sent[body.event.id] = time.perf_counter()
        await a.on_event(body)


async def _settle(timing: Timing, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(timing.latency) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def _row(kind: str, size: int, sent: int, latency: list[float], seconds: float) -> dict[str, Any]:
    ms = [x * 1000 for x in latency]
    return {
        "kind": kind,
        "bytes": size,
        "events": sent,
        "received": len(latency),
        "p50_ms": percentile(ms, 50) if ms else None,
        "p95_ms": percentile(ms, 95) if ms else None,
        "max_ms": max(ms) if ms else None,
        "per_s": round(len(latency) / seconds) if seconds else None,
    }


async def _measure(url: str, rate: float, seconds: float, burst: int) -> list[dict[str, Any]]:
    PostgresStorage(url).close()  # the registry's tables
    timing = Timing()
    a = EventRelay(url, "a", timing.deliver, timing.gap)
    b = EventRelay(url, "b", timing.deliver, timing.gap)
    a.start()
    b.start()
    rows = []
    try:
        while b.listens == 0:
            await asyncio.sleep(0.05)
        first = 0
        for kind, text, kind_rate in (
            ("small", "hello there", rate),
            ("large (stored)", "x" * 20_000, rate / 10),
        ):
            count = int(kind_rate * seconds)
            timing.latency = []
            await _paced(a, timing, first, count, kind_rate, text)
            await _settle(timing, count, 10)
            size = len(_body(0, text).stamped("a"))
            rows.append(_row(kind, size, count, timing.latency, seconds))
            first += count
        timing.latency = []
        started = time.perf_counter()
        for i in range(burst):
            body = _body(first + i, "hello there")
            timing.sent[body.event.id] = time.perf_counter()
            await a.on_event(body)
        await _settle(timing, burst, 60)
        elapsed = timing.last - started
        rows.append(_row("small, burst", rows[0]["bytes"], burst, timing.latency, elapsed))
    finally:
        await a.close()
        await b.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200, help="small events per second")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--burst", type=int, default=QUEUE_SIZE, help="at most the relay's queue (10000)"
    )
    args = parser.parse_args()
    with scratch_database() as database:
        rows = asyncio.run(_measure(database.url, args.rate, args.seconds, args.burst))
    print(table(rows, COLUMNS))
    write_result("cluster-events", rows, {"machine": machine(), **vars(args)})


if __name__ == "__main__":
    main()
