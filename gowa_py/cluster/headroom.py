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

#: What a worker is counted at before the node has measured one: the PSS of a forked
#: worker before kernel same-page merging folds its pages back (docs/benchmarks.md,
#: "Memory per connected idle session", the zygote without KSM), the most a node running
#: the default worker mode should expect: whether KSM will merge its workers' pages is
#: not known before they run.
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
    """A node's room for sessions; None where that limit is off."""

    #: ``max_sessions`` less the sessions it runs.
    by_count: int | None
    #: The sessions its memory budget holds at its per-worker figure.
    memory_capacity: int | None
    #: That less the sessions it runs.
    by_memory: int | None

    @property
    def headroom(self) -> int | None:
        """The sessions the node can take yet: the tighter limit, None when neither is set."""
        limits = [room for room in (self.by_count, self.by_memory) if room is not None]
        return min(limits) if limits else None

    def rank(self, sessions: int) -> tuple[float, int]:
        """Order of preference between nodes (the higher the better): the most headroom,
        no limit above any; then the fewest sessions."""
        headroom = self.headroom
        return (math.inf if headroom is None else headroom, -sessions)


def room(capacity: int, sessions: int, budget: int, worker_memory: int) -> Room:
    """The room of a node with ``capacity`` (``max_sessions``, 0: no limit) running
    ``sessions``, with a memory ``budget`` (bytes, 0: no limit) and ``worker_memory``
    the mean PSS of its measured workers (0: none measured yet)."""
    by_count = max(0, capacity - sessions) if capacity else None
    if not budget:
        return Room(by_count, None, None)
    per_worker = worker_memory if worker_memory > 0 else DEFAULT_WORKER_BYTES
    memory_capacity = budget // per_worker
    return Room(by_count, memory_capacity, max(0, memory_capacity - sessions))
