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
    free = room(0, 7, 0, 0)
    assert free == Room(7, None, None)
    assert (free.capacity, free.headroom, free.limit) == (None, None, None)


def test_count_limited_only():
    assert room(10, 3, 0, 5 * MB) == Room(3, 10, None)
    assert (room(10, 3, 0, 0).headroom, room(10, 3, 0, 0).limit) == (7, "max_sessions")
    assert room(10, 12, 0, 0).headroom == 0  # over max_sessions: none, never negative


def test_before_any_worker_is_measured_a_worker_counts_the_default_estimate():
    budget = 10 * DEFAULT_WORKER_BYTES + DEFAULT_WORKER_BYTES // 2
    assert room(0, 0, budget, 0) == Room(0, None, 10)
    assert (room(0, 4, budget, 0).headroom, room(0, 4, budget, 0).limit) == (6, "memory")


def test_measured_workers_set_the_memory_capacity():
    # 1000 MB at 8 MB a worker holds 125 sessions; 100 run.
    measured = room(0, 100, 1000 * MB, 8 * MB)
    assert (measured.memory_capacity, measured.capacity, measured.headroom) == (125, 125, 25)


def test_over_budget_leaves_no_headroom():
    over = room(1000, 50, 100 * MB, 10 * MB)
    assert (over.memory_capacity, over.headroom, over.limit) == (10, 0, "memory")
    tiny = room(0, 0, 1 * MB, 0)  # a budget smaller than one worker
    assert (tiny.capacity, tiny.headroom) == (0, 0)


def test_the_tighter_limit_wins():
    memory_limited = room(1000, 10, 200 * MB, 10 * MB)
    assert (memory_limited.capacity, memory_limited.headroom) == (20, 10)
    assert memory_limited.limit == "memory"
    count_limited = room(20, 10, 20_000 * MB, 10 * MB)
    assert (count_limited.capacity, count_limited.headroom) == (20, 10)
    assert count_limited.limit == "max_sessions"
    assert room(20, 0, 200 * MB, 10 * MB).limit == "memory"  # equal: memory named


def test_rank_prefers_the_largest_free_share_then_headroom_then_fewer_sessions():
    unlimited_idle = room(0, 2, 0, 0).rank()
    unlimited_busy = room(0, 500, 0, 0).rank()
    empty_large = room(100, 0, 0, 0).rank()
    empty_small = room(5, 0, 0, 0).rank()
    half = room(100, 50, 0, 0).rank()
    full = room(100, 100, 0, 0).rank()
    assert unlimited_idle > unlimited_busy > empty_large > empty_small > half > full
    assert room(100, 50, 0, 0).rank() == half  # equal: neither wins
    # Between equal shares, the most headroom: a node twice as large with twice the sessions.
    assert room(200, 100, 0, 0).rank() > half


def test_rank_balances_nodes_far_from_full_by_sessions_whatever_their_memory_noise():
    """One worker's PSS carries more of the shared pages than one of many: a node running
    one session measures more memory per worker than one running two. Its capacity by
    memory is lower, yet the node with fewer sessions ranks first."""
    budget = 12_000 * MB
    one = room(1000, 1, budget, 35 * MB)  # holds 342
    two = room(1000, 2, budget, 25 * MB)  # holds 480
    assert two.headroom is not None and one.headroom is not None
    assert two.headroom > one.headroom
    assert one.rank() > two.rank()


def test_rank_fills_nodes_in_proportion_to_their_capacity():
    small, large = 0, 0
    for _ in range(500):
        if room(0, small, 1000 * MB, 10 * MB).rank() >= room(0, large, 4000 * MB, 10 * MB).rank():
            small += 1
        else:
            large += 1
    assert (small, large) == (100, 400)


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
