"""How many more sessions a node can take: the fewer of what its ``max_sessions`` and
its memory budget leave.

A node's memory budget is what its workers may use in all (PSS). Its sessions are
counted at the mean PSS of its workers that have been measured, so sessions whose
workers are still starting count as much as the running ones; a node that has measured
none yet counts :data:`DEFAULT_WORKER_BYTES` a worker. Pure: the node computes its own
headroom with these functions, and every other node's from the figures each node
registers and sends with its heartbeat (``gowa.nodes``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import psutil

MB = 1024 * 1024

#: What a worker is counted at before the node has measured one: a forked worker's PSS
#: among many when kernel same-page merging does not fold its pages back
#: (docs/benchmarks.md, "Memory per connected idle session", the zygote without KSM).
#: Before its workers run, a node cannot tell whether KSM will merge their pages, so it
#: counts on it not doing so.
DEFAULT_WORKER_BYTES = 24 * MB

#: The share of the machine's available memory an automatic budget leaves to everything
#: but the workers: the gateway and its zygote, a worker's peak while it sends or
#: receives media (several times the file), PostgreSQL and the page cache.
AUTO_RESERVE = 0.2


def auto_budget() -> int:
    """The memory budget (bytes) of a node given none: what the machine has available
    as the node starts (its workers not yet running), less :data:`AUTO_RESERVE` of it."""
    return int(psutil.virtual_memory().available * (1 - AUTO_RESERVE))


def budget_bytes(node_memory_mb: float | None) -> int:
    """The budget of the ``node_memory_mb`` setting: unset, :func:`auto_budget`; 0, no
    limit (0 bytes); else that many MB."""
    if node_memory_mb is None:
        return auto_budget()
    return int(node_memory_mb * MB)


@dataclass(frozen=True)
class Room:
    """A node's room for sessions; None where a limit is off."""

    #: The sessions it runs.
    sessions: int
    #: Its ``max_sessions``.
    count_capacity: int | None
    #: The sessions its memory budget holds at its memory per worker.
    memory_capacity: int | None

    @property
    def capacity(self) -> int | None:
        """The sessions it holds in all: the tighter limit."""
        limits = [c for c in (self.count_capacity, self.memory_capacity) if c is not None]
        return min(limits) if limits else None

    @property
    def headroom(self) -> int | None:
        """The sessions it can take yet (never below 0)."""
        capacity = self.capacity
        return None if capacity is None else max(0, capacity - self.sessions)

    @property
    def limit(self) -> str | None:
        """What limits it: ``memory`` or ``max_sessions``; None: nothing."""
        if self.memory_capacity is None:
            return None if self.count_capacity is None else "max_sessions"
        if self.count_capacity is not None and self.count_capacity < self.memory_capacity:
            return "max_sessions"
        return "memory"

    def rank(self) -> tuple[float, float, int]:
        """Order of preference between nodes, the higher the better: the largest share
        of its capacity free, then the most headroom, then the fewest sessions; no limit
        above any. By the share, nodes fill in proportion to their capacities. Not by
        headroom first: a node's capacity by memory moves with its samples (and one
        worker carries more of the shared pages than one of many), by far more than a
        few sessions when nodes are far from full, which would then decide."""
        capacity, headroom = self.capacity, self.headroom
        if capacity is None or headroom is None:
            return (1.0, math.inf, -self.sessions)
        share = headroom / capacity if capacity else 0.0
        return (share, headroom, -self.sessions)


def room(capacity: int, sessions: int, budget: int, worker_memory: int) -> Room:
    """The room of a node with ``capacity`` (``max_sessions``, 0: no limit) running
    ``sessions``, with a memory ``budget`` (bytes, 0: no limit) and ``worker_memory``
    the mean PSS of its measured workers (0: none measured yet)."""
    count_capacity = capacity or None
    if not budget:
        return Room(sessions, count_capacity, None)
    per_worker = worker_memory if worker_memory > 0 else DEFAULT_WORKER_BYTES
    return Room(sessions, count_capacity, budget // per_worker)
