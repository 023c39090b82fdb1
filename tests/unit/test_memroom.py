"""Worker starts held while available memory is under start_min_available_mb."""

from __future__ import annotations

import asyncio

from gowa_py.supervisor.memroom import MB, available_bytes, wait_for_room


def _run(floor_mb: float, readings: list[int]) -> tuple[float, list[str], int]:
    """wait_for_room against a scripted sequence of available memory (the last repeats)."""
    holds: list[str] = []
    reads = 0

    def available() -> int:
        nonlocal reads
        reads += 1
        return readings[min(reads, len(readings)) - 1]

    async def on_hold(why: str) -> None:
        holds.append(why)

    waited = asyncio.run(wait_for_room(floor_mb, on_hold, available, poll_s=0.01))
    return waited, holds, reads


def test_enough_memory_starts_at_once():
    waited, holds, reads = _run(1024, [2048 * MB])
    assert (waited, holds, reads) == (0.0, [], 1)


def test_off_reads_nothing():
    waited, holds, reads = _run(0, [0])
    assert (waited, holds, reads) == (0.0, [], 0)


def test_a_start_waits_until_memory_is_back_and_says_why_once():
    waited, holds, reads = _run(1024, [100 * MB, 200 * MB, 1000 * MB, 1024 * MB])
    assert reads == 4
    assert waited >= 0.02
    assert holds == ["waiting for memory: 100 MB available, start_min_available_mb = 1024"]


def test_available_bytes_reads_the_host():
    with open("/proc/meminfo") as meminfo:
        fields = dict(line.split(":", 1) for line in meminfo)
    total = int(fields["MemTotal"].split()[0]) * 1024
    assert 0 < available_bytes() <= total
