"""The supervisor's periodic rounds: free disk per session, each worker's memory and CPU
(stored as samples for the dashboard) and the pruning of old samples."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping

from gowa_py import protocol as p
from gowa_py.config import Settings
from gowa_py.storage.interfaces import RegistryStorage
from gowa_py.supervisor.errors import SessionBusy, SessionMissing
from gowa_py.supervisor.locks import LifecycleLocks
from gowa_py.supervisor.runner import SessionRunner
from gowa_py.supervisor.sampler import Sampler

log = logging.getLogger("gowa.supervisor")

PublishStatus = Callable[[str, p.SessionState, str | None], Awaitable[None]]


class Upkeep:
    def __init__(
        self,
        settings: Settings,
        registry: RegistryStorage,
        runners: Mapping[str, SessionRunner],
        locks: LifecycleLocks,
        publish_status: PublishStatus,
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._runners = runners
        self._locks = locks
        self._publish_status = publish_status
        self._sampler = Sampler(settings.pss_sample_interval)

    async def run(self) -> None:
        interval = self._settings.sample_interval
        retention = self._settings.metrics_retention_hours * 3600
        last_prune = 0.0
        while True:
            await asyncio.sleep(interval)
            try:
                await self._check_disks()
                await self._sample_once()
                now = time.time()
                if now - last_prune > 600:
                    self._registry.prune_samples(now - retention)
                    last_prune = now
            except Exception:
                log.exception("sampling failed")

    async def _check_disks(self) -> None:
        """Stop a running session whose disk is full, as FAILED with the reason: its worker
        could not store keys, so it would ack messages it cannot decrypt and lose them;
        stopped, WhatsApp keeps them queued until the session is started again."""
        floor = self._settings.min_free_disk_mb * 1024 * 1024
        for session_id, runner in list(self._runners.items()):
            if floor <= 0 or not runner.running:
                continue
            try:
                free = (await asyncio.to_thread(shutil.disk_usage, runner.session_dir)).free
            except OSError:
                continue
            if free < floor:
                error = (
                    f"disk full: {free // 1024} KiB free for the session folder (below "
                    f"min_free_disk_mb = {self._settings.min_free_disk_mb:g}); free some space "
                    "and start the session again"
                )
                log.error("[%s] %s", session_id, error)
                with contextlib.suppress(SessionBusy, SessionMissing):
                    async with self._locks.hold(session_id):
                        await runner.stop(p.SessionState.FAILED)
                        await self._publish_status(session_id, p.SessionState.FAILED, error)

    async def _sample_once(self) -> None:
        pids = {runner.pid: runner for runner in self._runners.values() if runner.pid}
        samples = await asyncio.to_thread(self._sampler.sample, list(pids))
        now = time.time()
        rows = []
        for pid, sample in samples.items():
            runner = pids[pid]
            runner.sample = sample
            rows.append(
                {
                    "ts": now,
                    "session_id": runner.session_id,
                    "rss": sample.rss,
                    "pss": sample.pss,
                    "uss": sample.uss,
                    "cpu": sample.cpu_percent,
                }
            )
        self._registry.add_samples(rows)
