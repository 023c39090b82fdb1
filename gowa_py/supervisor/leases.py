"""A session's lease when the gateway is one node of a cluster (PostgreSQL): the
supervisor's side of :class:`ClusterNode` (its :class:`LeaseHolder`).

A session's worker starts here only once this node holds the session's lease, and is
fenced when the lease is lost; a session whose lease this node takes over is started
here, one it hands off is stopped. On SQLite there is no cluster (:attr:`node` is None)
and every check passes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from gowa_py import protocol as p
from gowa_py.cluster import node as cluster_node
from gowa_py.cluster.node import ClusterNode
from gowa_py.config import Settings
from gowa_py.errors import GowaError
from gowa_py.ipc import GatewaySockets
from gowa_py.registry import SessionRecord, WriteFence
from gowa_py.storage.interfaces import RegistryStorage
from gowa_py.supervisor.errors import SessionElsewhere
from gowa_py.supervisor.runner import SessionRunner

log = logging.getLogger("gowa.supervisor")


class SessionLeases:
    def __init__(
        self,
        settings: Settings,
        registry: RegistryStorage,
        runners: dict[str, SessionRunner],
        sockets: GatewaySockets,
        require: Callable[[str], SessionRecord],
        exclusive: Callable[[str], AbstractAsyncContextManager[SessionRunner]],
        start_runner: Callable[[str, SessionRunner], Awaitable[None]],
        drop_deleted: Callable[[str], Awaitable[None]],
    ) -> None:
        self._node_id = settings.cluster_node_id
        self._registry = registry
        self._runners = runners
        self._sockets = sockets
        self._require = require
        #: The supervisor's lifecycle lock and its one way to start a stopped worker.
        self._exclusive = exclusive
        self._start_runner = start_runner
        #: Drops what this node keeps of a session deleted through another node.
        self._drop_deleted = drop_deleted
        #: This node's leases; None on SQLite (one gateway, no leases).
        self.node: ClusterNode | None = cluster_node.for_settings(settings, self)
        if self.node is not None:
            # What the workers say about their sessions is written only under the lease.
            node = self.node
            registry.fence = WriteFence(
                node.node_id,
                node.epoch,
                lambda session_id: node.lost(session_id, "its lease is another node's now"),
            )

    async def run_elsewhere(self) -> set[str]:
        """The sessions another node runs (their state is that node's to give)."""
        owners = await self.node.owners() if self.node is not None else {}
        return {sid for sid, route in owners.items() if route.node != self._node_id}

    async def claim(self, session_id: str) -> None:
        """In a cluster, take the session's lease before its worker starts here."""
        if self.node is not None:
            owner = await self.node.claim(session_id)
            if owner is not None:
                raise SessionElsewhere(session_id, owner.node)

    @asynccontextmanager
    async def starting(self, session_id: str, runner: SessionRunner) -> AsyncIterator[None]:
        """Around the start of a stopped session's worker: the lease is taken first, given
        up again if the start fails, and the worker fenced if it was lost meanwhile."""
        if self.node is None:
            yield
            return
        await self.claim(session_id)
        try:
            yield
        except BaseException:
            await self.node.release(session_id)
            raise
        if not self.node.holds(session_id):  # lost while starting: fenced already?
            await runner.fence()
            raise SessionElsewhere(session_id, "")

    async def check_not_elsewhere(self, session_id: str) -> None:
        """Raise :class:`SessionElsewhere` when another live node runs the session."""
        owner = await self.node.owner(session_id) if self.node is not None else None
        if owner is not None and owner.live and owner.node != self._node_id:
            raise SessionElsewhere(session_id, owner.node)

    async def release(self, session_id: str) -> None:
        if self.node is not None:
            await self.node.release(session_id)

    def forget(self, session_id: str) -> None:
        """The session was deleted (its lease with it)."""
        if self.node is not None:
            self.node.forget(session_id)

    # ------------------------------------------------ what the node asks (LeaseHolder)

    async def sync(self) -> None:
        """See what the other nodes wrote (sessions made, deleted, their states, keys);
        every cluster round. The idle runner (and folder) of a session deleted through
        another node is dropped, so that it no longer counts here (``max_sessions``)."""
        self._registry.reload()
        gone = [sid for sid in self._runners if self._registry.get(sid) is None]
        for session_id in gone:
            runner = self._runners.get(session_id)
            if runner is None or runner.running or self._registry.get(session_id) is not None:
                continue
            try:
                await self._drop_deleted(session_id)
            except Exception:  # the round goes on: its leases are renewed regardless
                log.exception("[%s] deleted on another node, not dropped here", session_id)

    async def take_over(self, session_id: str) -> None:
        """Start a session whose lease this node has just claimed (its node died, or
        nobody ran it); given up again if it cannot start here."""
        try:
            self._registry.reload(session_id)  # as its last node left it
            async with self._exclusive(session_id) as runner:
                if self._require(session_id).desired == "running":
                    await self._start_runner(session_id, runner)
                    return
        except GowaError as exc:
            log.warning("[%s] not taken over: %s", session_id, exc)
        await self.release(session_id)

    async def extend(self, leases: dict[str, float]) -> None:
        """Pass renewed leases on to the workers, which stop by themselves without them."""
        running = [sid for sid in leases if self._running(sid)]
        await asyncio.gather(
            *(self._sockets.request(sid, p.LeaseRenewed(leases[sid]), 1.0) for sid in running),
            return_exceptions=True,
        )

    def memory(self) -> int:
        """The PSS of the running workers as last sampled (RSS before a first PSS)."""
        samples = (r.sample for r in self._runners.values() if r.running)
        return sum(sample.pss or sample.rss for sample in samples)

    def worker_memory(self) -> int:
        """The mean PSS of the running workers sampled so far (0: none yet), what this
        node counts a session at when it weighs its memory budget."""
        measured = [r.sample.pss for r in self._runners.values() if r.running and r.sample.pss]
        return sum(measured) // len(measured) if measured else 0

    async def hand_off(self, session_id: str) -> None:
        """Stop the session here and give its lease up: another node takes it over (this
        node is draining). It stays meant to run."""
        try:
            async with self._exclusive(session_id) as runner:
                await runner.stop()
        except GowaError as exc:
            log.warning("[%s] handed over without a clean stop: %s", session_id, exc)
        await self.release(session_id)

    async def fence(self, session_id: str, reason: str) -> None:
        """Kill the session's worker now: its lease is lost (``reason``)."""
        if self._running(session_id):
            log.warning("[%s] worker stopped: %s", session_id, reason)
            await self._runners[session_id].fence()

    def _running(self, session_id: str) -> bool:
        runner = self._runners.get(session_id)
        return runner is not None and runner.running
