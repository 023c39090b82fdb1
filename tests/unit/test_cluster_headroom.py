"""A node's headroom: the tighter of what its max_sessions and its memory budget leave,
sessions counted at the mean PSS of its measured workers."""

from __future__ import annotations

import psutil

from gowa_py.cluster.headroom import (
    AUTO_RESERVE,
    DEFAULT_WORKER_BYTES,
    MB,
    Room,
    auto_budget,
    budget_bytes,
    room,
)


def test_no_limit_at_all_has_no_headroom_figure():
    assert room(0, 7, 0, 0) == Room(None, None, None)
    assert room(0, 7, 0, 0).headroom is None


def test_count_limited_only():
    assert room(10, 3, 0, 5 * MB) == Room(7, None, None)
    assert room(10, 3, 0, 0).headroom == 7
    assert room(10, 12, 0, 0).headroom == 0  # over max_sessions: none, never negative


def test_before_any_worker_is_measured_a_worker_counts_the_default_estimate():
    budget = 10 * DEFAULT_WORKER_BYTES + DEFAULT_WORKER_BYTES // 2
    assert room(0, 0, budget, 0) == Room(None, 10, 10)
    assert room(0, 4, budget, 0) == Room(None, 10, 6)


def test_measured_workers_set_the_memory_capacity():
    # 1000 MB at 8 MB a worker holds 125 sessions; 100 run.
    assert room(0, 100, 1000 * MB, 8 * MB) == Room(None, 125, 25)
    assert room(0, 100, 1000 * MB, 8 * MB).headroom == 25


def test_over_budget_leaves_no_headroom():
    assert room(1000, 50, 100 * MB, 10 * MB) == Room(950, 10, 0)
    assert room(1000, 50, 100 * MB, 10 * MB).headroom == 0
    assert room(0, 0, 1 * MB, 0) == Room(None, 0, 0)  # a budget smaller than one worker


def test_the_tighter_limit_wins():
    memory_limited = room(1000, 10, 200 * MB, 10 * MB)
    assert (memory_limited.by_count, memory_limited.by_memory) == (990, 10)
    assert memory_limited.headroom == 10
    count_limited = room(20, 10, 20_000 * MB, 10 * MB)
    assert (count_limited.by_count, count_limited.by_memory) == (10, 1990)
    assert count_limited.headroom == 10


def test_rank_prefers_headroom_then_fewer_sessions_and_no_limit_above_any():
    unlimited_busy = room(0, 500, 0, 0).rank(500)
    unlimited_idle = room(0, 2, 0, 0).rank(2)
    roomy = room(1000, 10, 0, 0).rank(10)
    tight = room(1000, 10, 200 * MB, 10 * MB).rank(10)  # 20 - 10 = 10
    same_headroom_busier = room(1000, 20, 300 * MB, 10 * MB).rank(20)  # 30 - 20 = 10
    assert unlimited_idle > unlimited_busy > roomy > tight > same_headroom_busier
    assert room(1000, 10, 0, 0).rank(10) == roomy  # equal: neither wins


def test_budget_setting():
    assert budget_bytes(0) == 0  # no limit
    assert budget_bytes(512) == 512 * MB
    assert budget_bytes(0.5) == MB // 2
    automatic = budget_bytes(None)
    available = psutil.virtual_memory().available
    # What the machine has available less the reserve (the machine's memory moves a
    # little between the two readings).
    assert 0 < automatic < available
    assert abs(automatic - available * (1 - AUTO_RESERVE)) < 0.05 * available
    assert abs(auto_budget() - automatic) < 0.05 * available
