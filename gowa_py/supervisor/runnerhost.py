"""The supervisor as its runners see it (:class:`RunnerOwner`): what a worker is given (its
config with its proxy judged again and its lease's term, its keys and database login, the
way to the folders, sockets and CA it must reach under a uid of its own) and where a runner
sends commands and reports.

Kept off the supervisor's public surface: minting a worker's keys is for a runner starting
one, not for a route.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
from yarl import URL

from gowa_py import protocol as p
from gowa_py.cluster.node import ClusterNode
from gowa_py.config import Settings
from gowa_py.ipc import GatewaySockets
from gowa_py.registry import SessionRecord
from gowa_py.storage.interfaces import WorkerDatabase
from gowa_py.supervisor.dispatch import EventDispatch
from gowa_py.supervisor.identity import WorkerIds
from gowa_py.supervisor.runner import StartRefused
from gowa_py.webhooks.policy import BlockedTarget, TargetPolicy, Unresolvable

Requester = Callable[[str, p.Command, float], Awaitable[p.Result]]


class RunnerHost:
    def __init__(
        self,
        settings: Settings,
        data_dir: Path,
        sessions_dir: Path,
        sockets: GatewaySockets,
        sandbox: p.SandboxConfig | None,
        proxy_policy: TargetPolicy,
        worker_ids: WorkerIds,
        worker_database: Callable[[str], WorkerDatabase],
        require: Callable[[str], SessionRecord],
        request: Requester,
        events: EventDispatch,
        cluster: ClusterNode | None,
    ) -> None:
        self._settings = settings
        self._data_dir = data_dir
        self._sessions_dir = sessions_dir
        self._sockets = sockets
        self._sandbox = sandbox
        self._proxy_policy = proxy_policy
        self._worker_ids = worker_ids
        self._worker_database = worker_database
        self._require = require
        self._request = request
        self._events = events
        self._cluster = cluster

    def share(self) -> None:
        """What workers with a uid of their own must reach: the way to their folders,
        the sockets and the sandbox CA; their group passes, nobody else may look."""
        share = self._worker_ids.share
        share(self._data_dir, 0o710)
        share(self._sessions_dir, 0o710)
        for path in self._sockets.socket_paths():
            share(path.parent, 0o710)
            share(path, 0o660)
        if self._sandbox is not None:
            share(Path(self._sandbox.ca_file).parent, 0o710)
            share(Path(self._sandbox.ca_file), 0o640)

    async def worker_config(self, session_id: str) -> p.WorkerConfig:
        """The config of the session's next worker (raises ``StartRefused`` for a proxy
        that no longer passes, or a lease that is no longer this node's)."""
        config = await self._config(self._require(session_id))
        if self._cluster is None:
            return config
        valid_until = self._cluster.valid_until(session_id)
        if valid_until is None:
            raise StartRefused("the session's lease is no longer this node's", final=False)
        return msgspec.structs.replace(config, lease_valid_until=valid_until)

    async def _config(self, record: SessionRecord) -> p.WorkerConfig:
        session_id = record.id
        session_dir = self._sessions_dir / session_id
        session_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return p.WorkerConfig(
            session_id=session_id,
            session_dir=str(session_dir),
            command_endpoint=self._sockets.command_endpoint,
            event_endpoint=self._sockets.event_endpoint,
            parent_pid=os.getpid(),
            server_key=self._sockets.server_key,
            proxy=await proxy_for_worker(record.config.proxy, self._sandbox, self._proxy_policy),
            settings=record.config.worker_settings(),
            sandbox=self._sandbox,
            log_level=self._settings.worker_log_level.upper(),
            qr_limit=self._settings.qr_limit,
            silence_timeout_s=self._settings.silence_timeout,
            max_download_bytes=int(self._settings.max_download_mb * 1024 * 1024),
            run_as=self._worker_ids.run_as(session_id, session_dir),
            log_max_bytes=int(self._settings.worker_log_max_mb * 1024 * 1024),
            memory_limit_bytes=self._settings.worker_memory_mb * 1024 * 1024,
        )

    async def worker_keys(self, session_id: str) -> p.WorkerKeys:
        # The database login may be made or changed first (a PostgreSQL role and its new
        # password): off the event loop, which many starting sessions would hold up.
        database = await asyncio.to_thread(self._worker_database, session_id)
        keys = self._sockets.admit(session_id)
        return msgspec.structs.replace(
            keys, database_url=database.url, database_pooled=database.pooled
        )

    async def request(self, session_id: str, command: p.Command, timeout: float) -> p.Result:
        return await self._request(session_id, command, timeout)

    async def runner_status(
        self, session_id: str, status: p.SessionState, error: str | None
    ) -> None:
        if self._cluster is not None and not self._cluster.holds(session_id):
            return  # the session's state is its lease holder's to tell
        await self._events.set_status(session_id, status, error)

    async def runner_notice(self, session_id: str, name: str, payload: dict[str, Any]) -> None:
        await self._events.notice(session_id, name, payload)


async def proxy_for_worker(
    proxy: str | None, sandbox: p.SandboxConfig | None, policy: TargetPolicy
) -> str | None:
    """The session's proxy judged again at every start, pinned to the address judged.

    The gateway judged it when it was set, but a name can answer differently since
    (DNS rebinding) and a config can predate the policy or a narrower allow list; the
    worker is given the address that passed, so it dials what was checked. An https
    proxy keeps its name (its certificate is for the name). The sandbox's proxy is the
    gateway's own and is not a session's config.
    """
    if proxy is None or sandbox is not None:
        return proxy
    url = URL(proxy)
    try:
        addresses = await policy.check_host(url.host or "", url.port or 1080)
    except BlockedTarget as exc:
        final = not isinstance(exc, Unresolvable)
        raise StartRefused(f"proxy refused: {exc}", final=final) from exc
    return proxy if url.scheme == "https" else str(url.with_host(addresses[0]))
