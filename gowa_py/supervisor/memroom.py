"""A worker's start waits while the host's available memory is under
``start_min_available_mb``.

A new worker holds ~22 MB of private pages until ksmd has merged them with its siblings'
(~7 MB each afterwards; docs/benchmarks.md, "What one node holds"). A gateway that
starts 1000 sessions at once (after a restart, a takeover) brings them up in a minute or
two, far faster than ksmd merges them, and would need ~22 GB at once: on a 24 GB machine
the kernel's OOM killer would pick a victim (the gateway, PostgreSQL) instead. A held
start goes on as soon as memory is back (ksmd merging, other processes exiting), so a
full node comes back more slowly rather than not at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import psutil

log = logging.getLogger("gowa.supervisor")

MB = 1024 * 1024


def available_bytes() -> int:
    """``MemAvailable``: what the kernel can hand out without swapping."""
    return int(psutil.virtual_memory().available)


async def wait_for_room(
    floor_mb: float,
    on_hold: Callable[[str], Awaitable[None]],
    available: Callable[[], int] = available_bytes,
    poll_s: float = 1.0,
) -> float:
    """Return once ``available()`` is at least ``floor_mb`` (0: at once); calls
    ``on_hold`` with why, once, if it has to wait. Returns the seconds waited."""
    if floor_mb <= 0:
        return 0.0
    floor = floor_mb * MB
    now = available()
    if now >= floor:
        return 0.0
    loop = asyncio.get_running_loop()
    began = loop.time()
    await on_hold(
        f"waiting for memory: {now / MB:.0f} MB available, start_min_available_mb = {floor_mb:g}"
    )
    while available() < floor:
        await asyncio.sleep(poll_s)
    return loop.time() - began
