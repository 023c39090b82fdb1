"""This node's part in the cluster: hold leases, renew them, fence, take over.

Self-fencing: a lease renewed at monotonic time ``t`` (taken before the statement was
sent) lasts on the database until at least ``t + lease_ttl``, so the node counts it
valid only until ``t + lease_ttl - lease_margin`` and stops the session's worker then if
no renewal came back: the worker is gone before another node may take the lease. The
monotonic clock keeps running while the database is unreachable or slow.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from gowa_py.cluster import headroom
from gowa_py.cluster.leases import LeaseStore, NodeRow, Owner, Route
from gowa_py.config import Settings
from gowa_py.errors import GowaError
from gowa_py.storage import postgres

log = logging.getLogger("gowa.cluster")

#: How often the fencing watch looks at the leases' deadlines.
FENCE_TICK_S = 0.2
#: How often a node looks for sessions to take over (``takeover_batch`` at a time): a
#: restarted node brings its sessions back at this pace, not one batch per renewal.
SWEEP_TICK_S = 1.0

T = TypeVar("T")


class LeaseHolder(Protocol):
    """What the node asks of the supervisor."""

    async def take_over(self, session_id: str) -> None:
        """Start the session here: this node has just claimed its lease."""

    async def fence(self, session_id: str, reason: str) -> None:
        """Stop the session's worker now: its lease is no longer this node's."""

    async def sync(self) -> None:
        """Read again what the other nodes may have written (every round)."""

    def memory(self) -> int:
        """The memory this node's workers use (PSS, bytes), for the other nodes to see."""

    def worker_memory(self) -> int:
        """The mean PSS of this node's measured workers (bytes; 0: none measured yet)."""

    async def hand_off(self, session_id: str) -> None:
        """Stop the session here and give its lease up, for another node to take it
        (the node is draining)."""

    async def extend(self, leases: dict[str, float]) -> None:
        """Tell the sessions' workers until when (monotonic) their leases are valid."""


class NodeIdInUse(GowaError):
    """Another live node has this node's id."""


@dataclass
class Lease:
    epoch: int
    #: Monotonic time after which the lease must be treated as gone.
    deadline: float


@dataclass(frozen=True)
class Timing:
    ttl: float
    renew_interval: float
    margin: float
    takeover_batch: int


class ClusterNode:
    def __init__(
        self,
        store: LeaseStore,
        url: str,
        timing: Timing,
        holder: LeaseHolder,
        capacity: int,
        memory_budget: int = 0,
    ) -> None:
        self.store = store
        self.node_id = store.node_id
        self.url = url
        self.timing = timing
        self.holder = holder
        #: The most sessions this node takes (``max_sessions``; 0 = no limit).
        self.capacity = capacity
        #: What this node's workers may use in all (bytes; 0 = no limit).
        self.memory_budget = memory_budget
        self.held: dict[str, Lease] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._takeovers: set[asyncio.Task[None]] = set()
        self._fences: set[asyncio.Task[None]] = set()
        self._closing = False
        #: Asked to hand every session over (``POST /api/cluster/nodes/{id}/drain``).
        self.draining = False
        self._handing: set[str] = set()
        #: Called with a session whose lease this node has just taken (from another
        #: node, or unheld): what that node left (webhook deliveries) is this one's now.
        self.on_claim: list[Callable[[str], None]] = []
        #: Every live lease's node, as of the last renewal round.
        self._owners: dict[str, Route] = {}
        #: The nodes, as of the last renewal round (where new sessions go).
        self._nodes: list[NodeRow] = []
        # The store's statements run one at a time on a thread of their own: in the
        # default executor, a renewal would queue behind whatever else blocks there
        # (sessions being taken over make database logins and wait for the pool) until
        # its leases expired.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"gowa-cluster-{self.node_id}")

    async def _db(self, call: Callable[..., T], *args: Any) -> T:
        """Run one of the store's statements on the node's own thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(call, *args))

    def holds(self, session_id: str) -> bool:
        return self.valid_until(session_id) is not None

    def valid_until(self, session_id: str) -> float | None:
        """The monotonic time until which the session's lease is this node's, if it is."""
        lease = self.held.get(session_id)
        if lease is None or time.monotonic() >= lease.deadline:
            return None
        return lease.deadline

    def _valid_until(self, sent_at: float) -> float:
        return sent_at + self.timing.ttl - self.timing.margin

    def node_of(self, session_id: str) -> str | None:
        """The node running the session, this one's knowledge first."""
        if self.holds(session_id):
            return self.node_id
        route = self._owners.get(session_id)
        return None if route is None or route.node == self.node_id else route.node

    def route(self, session_id: str) -> Route | None:
        """The other node running the session, where its requests go; None: this node
        serves them (it runs the session, or no node does)."""
        if self.holds(session_id):
            return None
        route = self._owners.get(session_id)
        return None if route is None or route.node == self.node_id or not route.url else route

    def placement(self) -> Route | None:
        """The node a new session should go to: the live, undrained one with the most
        room (:meth:`headroom.Room.rank`), this one on a tie; None: this one."""
        # Draining, this node takes no new session if any other node has room.
        best_rank: tuple[float, float, int] = (0.0, 0, 0) if self.draining else self.room().rank()
        best: NodeRow | None = None
        for node in self._nodes:
            if node.id == self.node_id or node.status != "up" or not node.url:
                continue
            if node.heartbeat_age > 2 * self.timing.renew_interval + 1:
                continue
            rank = room_of(node).rank()
            if rank > best_rank:
                best, best_rank = node, rank
        return None if best is None else Route(best.id, best.url, best.heartbeat_age)

    def cluster_capacity(self) -> int:
        """The sessions the cluster may hold in all (created, running or not): the
        ``max_sessions`` of its nodes that are up or draining, together, as of the last
        round; 0 (no limit) when one of them has none."""
        if not self.capacity:
            return 0
        total = self.capacity
        for node in self._nodes:
            if node.id == self.node_id or node.status not in ("up", "draining"):
                continue
            if node.heartbeat_age > self.timing.ttl:
                continue  # lost: dead, or cut off for a lease term
            if not node.capacity:
                return 0
            total += node.capacity
        return total

    def room(self) -> headroom.Room:
        """This node's room now: its leases and its workers' latest samples."""
        return headroom.room(
            self.capacity, len(self.held), self.memory_budget, self.holder.worker_memory()
        )

    def silent(self, route: Route) -> bool:
        """Whether the route's node missed renewals (frozen, dying, cut off): a request
        sent there may hang until its sessions have moved."""
        return route.heartbeat_age > 2 * self.timing.renew_interval + 1

    def running(self) -> dict[str, str]:
        """:meth:`node_of` every session some node runs."""
        found = {sid: r.node for sid, r in self._owners.items() if r.node != self.node_id}
        found.update((sid, self.node_id) for sid in self.held if self.holds(sid))
        return found

    async def claim(self, session_id: str) -> Owner | None:
        """Take the session's lease for this node; None when taken, else who holds it."""
        sent_at = time.monotonic()
        epoch = await self._db(self.store.claim, session_id)
        if epoch is not None:
            known = self.held.get(session_id)
            self.held[session_id] = Lease(epoch, self._valid_until(sent_at))
            if known is None or known.epoch != epoch:
                for listener in self.on_claim:
                    listener(session_id)
            return None
        owner = await self._db(self.store.owner, session_id)
        return owner or Owner("", None, 0, False)

    async def release(self, session_id: str) -> None:
        lease = self.held.pop(session_id, None)
        if lease is not None:
            await self._db(self.store.release, session_id, lease.epoch)

    def forget(self, session_id: str) -> None:
        """The session was deleted (its lease with it)."""
        self.held.pop(session_id, None)

    async def owner(self, session_id: str) -> Owner | None:
        return await self._db(self.store.owner, session_id)

    async def owners(self) -> dict[str, Route]:
        return await self._db(self.store.owners)

    async def nodes(self) -> list[NodeRow]:
        return await self._db(self.store.nodes)

    async def drain(self, node_id: str) -> bool:
        """Ask a node (this one or another) to hand its sessions over; False: unknown."""
        return await self._db(self.store.drain, node_id)

    async def start(self) -> None:
        await self._wait_for_namesake()
        await self._db(self.store.register, self.url, self.capacity, self.memory_budget)
        log.info("cluster node %s at %s", self.node_id, self.url)
        self._tasks.append(asyncio.create_task(self._renewing(), name="cluster-renew"))
        self._tasks.append(asyncio.create_task(self._fencing(), name="cluster-fence"))
        self._tasks.append(asyncio.create_task(self._sweeping(), name="cluster-sweep"))

    async def quiet(self) -> None:
        """Take nothing over any more: the node is shutting down. Its leases are still
        renewed, and fenced, while its workers stop."""
        self._closing = True
        for task in self._takeovers:
            task.cancel()
        await asyncio.gather(*self._takeovers, return_exceptions=True)

    async def _wait_for_namesake(self) -> None:
        """Two nodes under one id would share their leases and run sessions twice: a
        node whose id another node still renews under waits until that one is silent
        for a lease term (a crashed run of this very node), and gives up after two."""
        waited = 0.0
        while True:
            found = await self._db(self.store.namesake)
            if found is None or found[0] == "down" or found[1] > self.timing.ttl:
                return
            if waited >= 2 * self.timing.ttl:
                raise NodeIdInUse(
                    f"node id {self.node_id!r} is in use: a node under it renewed "
                    f"{found[1]:.0f} s ago and keeps renewing; give this gateway another "
                    "--node-id (GOWA_NODE_ID)"
                )
            log.warning(
                "node id %s renewed %.0f s ago by another run: waiting for it to go silent",
                self.node_id,
                found[1],
            )
            await asyncio.sleep(self.timing.renew_interval)
            waited += self.timing.renew_interval

    async def close(self) -> None:
        """Give every lease up (the caller stopped the workers) and leave."""
        await self.quiet()
        tasks = [*self._tasks, *self._fences]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.held.clear()
        try:
            await self._db(self.store.leave)
        except Exception as exc:  # the database is away: the leases expire by themselves
            log.warning("leaving the cluster: %s", exc)
        await self._db(self.store.close)
        self._thread.shutdown()

    # ------------------------------------------------------------ the rounds

    async def _renewing(self) -> None:
        """A round every ``lease_renew_interval`` from the start of the last one, not
        after it: what a round does besides renewing (telling the workers, which may be
        starting and slow to answer; reading the cluster) must not push the next renewal
        past the leases' term."""
        while True:
            started = time.monotonic()
            try:
                renewed = await self._renew()
                # Told while the round goes on.
                extending = asyncio.ensure_future(self.holder.extend(renewed))
                try:
                    beat = await self._db(
                        self.store.beat, self.holder.memory(), self.holder.worker_memory()
                    )
                    self.draining = beat == "draining"
                    self._owners = await self._db(self.store.owners)
                    self._nodes = await self._db(self.store.nodes)
                    await self.holder.sync()
                finally:
                    await extending
            except Exception as exc:
                if not postgres.unavailable(exc):
                    raise
                log.warning("renewing the leases failed, retrying: %s", exc)
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, self.timing.renew_interval - elapsed))

    async def _sweeping(self) -> None:
        while True:
            try:
                await self._sweep()
            except Exception as exc:
                if not postgres.unavailable(exc):
                    raise
                log.warning("looking for sessions to take over failed, retrying: %s", exc)
            await asyncio.sleep(SWEEP_TICK_S)

    async def _renew(self) -> dict[str, float]:
        """Renew every lease held; returns until when (monotonic) each renewed one is
        this node's, for its worker to be told."""
        snapshot = dict(self.held)
        sent_at = time.monotonic()
        kept = await self._db(
            self.store.renew, {sid: lease.epoch for sid, lease in snapshot.items()}
        )
        extended: dict[str, float] = {}
        for session_id, lease in snapshot.items():
            if self.held.get(session_id) is not lease:
                continue  # released or claimed again meanwhile
            if session_id in kept:
                lease.deadline = extended[session_id] = self._valid_until(sent_at)
            else:
                self._lose(session_id, "its lease was taken by another node")
        return extended

    async def _sweep(self) -> None:
        """Claim sessions no live node runs, a bounded number per round, and start them;
        a draining node hands its own over instead, as many at a time."""
        if self._closing:
            return
        room = self.timing.takeover_batch - len(self._takeovers)
        if self.draining:
            waiting = [sid for sid in self.held if sid not in self._handing]
            for session_id in waiting[: max(0, room)]:
                log.info("draining: handing session %s over", session_id)
                self._handing.add(session_id)
                self._track(self._hand_off(session_id), f"hand-{session_id}")
            return
        # No more than its max_sessions and its memory budget hold.
        own = self.room().headroom
        if own is not None:
            room = min(room, own)
        if room <= 0:
            return
        orphans = await self._db(self.store.orphans, room, list(self.held))
        for session_id in orphans:
            if await self.claim(session_id) is not None:
                continue  # another node was quicker
            log.info("taking over session %s", session_id)
            self._track(self.holder.take_over(session_id), f"take-{session_id}")

    async def _hand_off(self, session_id: str) -> None:
        try:
            await self.holder.hand_off(session_id)
        finally:
            self._handing.discard(session_id)

    def _track(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._takeovers.add(task)
        task.add_done_callback(self._takeovers.discard)

    async def _fencing(self) -> None:
        while True:
            now = time.monotonic()
            for session_id, lease in list(self.held.items()):
                if now >= lease.deadline:
                    self._lose(session_id, "its lease could not be renewed in time")
            await asyncio.sleep(FENCE_TICK_S)

    def epoch(self, session_id: str) -> int | None:
        """The epoch of this node's lease of the session, while it is this node's."""
        lease = self.held.get(session_id)
        return None if lease is None or not self.holds(session_id) else lease.epoch

    def lost(self, session_id: str, reason: str) -> None:
        """The database refused a write about the session: another node holds its lease.
        Stop the session's worker here (whether this node believed it held the lease or
        not)."""
        self.held.pop(session_id, None)
        self._fence(session_id, reason)

    def _lose(self, session_id: str, reason: str) -> None:
        if self.held.pop(session_id, None) is None:
            return
        self._fence(session_id, reason)

    def _fence(self, session_id: str, reason: str) -> None:
        log.warning("session %s: stopping its worker, %s", session_id, reason)
        task = asyncio.create_task(
            self.holder.fence(session_id, reason), name=f"fence-{session_id}"
        )
        self._fences.add(task)
        task.add_done_callback(self._fences.discard)


def for_settings(settings: Settings, holder: LeaseHolder) -> ClusterNode | None:
    """The node of a gateway on PostgreSQL; None on SQLite (one gateway, no leases)."""
    if not settings.database_url:
        return None
    store = LeaseStore(
        settings.database_url,
        settings.cluster_node_id,
        settings.lease_ttl,
        # A statement (or a connection attempt) slower than a renewal round is as good
        # as failed.
        settings.lease_renew_interval,
    )
    timing = Timing(
        settings.lease_ttl,
        settings.lease_renew_interval,
        settings.lease_margin,
        settings.takeover_batch,
    )
    return ClusterNode(
        store,
        settings.cluster_url,
        timing,
        holder,
        settings.max_sessions,
        headroom.budget_bytes(settings.node_memory_mb),
    )


def room_of(node: NodeRow) -> headroom.Room:
    """A node's room as its row shows it (its last heartbeat)."""
    return headroom.room(node.capacity, node.sessions, node.memory_budget, node.worker_memory)
