"""The supervisor: every session's runner and its lifecycle, the IPC sockets and the
registry; events, hibernation, the periodic rounds, what runners are given, a cluster's
leases and deleting a session are its parts (dispatch.py, hibernation.py, upkeep.py,
runnerhost.py, leases.py, deletion.py); moving a session between gateways is
:attr:`Supervisor.transfer` (transfer.py).

It is the only part of the gateway that knows about processes. The HTTP layer asks it
to create, start, stop or delete sessions, to send commands, how a session's worker is
(:meth:`Supervisor.worker_info`) and for a login QR code (:meth:`Supervisor.login_qr`),
and subscribes to the event stream with :meth:`Supervisor.subscribe`; it never sees a
runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from pathlib import Path

from gowa_py import protocol as p
from gowa_py.archive import session as archive
from gowa_py.cluster.node import ClusterNode
from gowa_py.config import Settings
from gowa_py.ids import check_session_id
from gowa_py.ipc import GatewaySockets, WorkerUnavailable, endpoints
from gowa_py.models import SessionConfig
from gowa_py.registry import LeaseLost, SessionRecord
from gowa_py.storage.interfaces import RegistryStorage, WorkerDatabase
from gowa_py.supervisor import ksm
from gowa_py.supervisor import process as proc
from gowa_py.supervisor.deletion import SessionDeletion
from gowa_py.supervisor.dispatch import EventDispatch, Listener
from gowa_py.supervisor.errors import (
    PairingLimit,
    SessionExists,
    SessionExported,
    SessionLimit,
    SessionMissing,
)
from gowa_py.supervisor.hibernation import Hibernation
from gowa_py.supervisor.identity import WorkerIds
from gowa_py.supervisor.leases import SessionLeases
from gowa_py.supervisor.locks import LifecycleLocks
from gowa_py.supervisor.pairing import PairingCap
from gowa_py.supervisor.runner import SessionRunner, WorkerInfo
from gowa_py.supervisor.runnerhost import RunnerHost
from gowa_py.supervisor.transfer import SessionTransfer
from gowa_py.supervisor.upkeep import Upkeep
from gowa_py.webhooks.policy import TargetPolicy, parse_networks

log = logging.getLogger("gowa.supervisor")


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        registry: RegistryStorage,
        data_dir: Path,
        sandbox: p.SandboxConfig | None = None,
        worker_database: Callable[[str], WorkerDatabase] = lambda _session_id: WorkerDatabase(),
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.data_dir = data_dir
        self.sessions_dir = data_dir / "sessions"
        self.sessions_dir.mkdir(parents=True, exist_ok=True)
        self.sandbox = sandbox
        #: Where a session's proxy may be (gateway/webhooks.py judges it when it is set).
        self.proxy_policy = TargetPolicy(
            parse_networks(settings.proxy_allow_networks), [], allow_setting="proxy_allow_networks"
        )
        self.worker_ids = WorkerIds(settings.worker_uids, data_dir)
        command_endpoint, event_endpoint = endpoints(data_dir)
        self.runners: dict[str, SessionRunner] = {}
        self._locks = LifecycleLocks(self.runners, settings.command_timeout)
        self._hibernation = Hibernation(registry, self.runners, self._locks)
        self._events = EventDispatch(
            registry,
            self.runners,
            self._locks,
            self.request,
            self.touch,
            settings.sample_interval,
        )
        self._upkeep = Upkeep(
            settings, registry, self.runners, self._locks, self._events.publish_status
        )
        self.sockets = GatewaySockets(
            command_endpoint, event_endpoint, self._events.on_event, self._events.on_hello
        )
        self._start_slots = asyncio.Semaphore(settings.effective_start_concurrency)
        self._pairing = PairingCap(registry, self.runners, settings.max_pairing)
        self._tasks: list[asyncio.Task[None]] = []
        self.started_at = time.time()
        self.ksm = ksm.KsmStatus("off")
        #: Called with every worker command and its round-trip time (the metrics).
        self.observe_request: Callable[[p.Command, float], None] | None = None
        self._leases = SessionLeases(
            settings,
            registry,
            self.runners,
            self.sockets,
            self.require,
            self._exclusive,
            self._start_runner,
            self._drop_deleted,
        )
        #: This node's leases when the gateway is one of a cluster (PostgreSQL); then a
        #: session runs only while its lease is this node's.
        self.cluster: ClusterNode | None = self._leases.node
        #: Moving a session between gateways (export, import).
        self.transfer = SessionTransfer(
            registry,
            self.sessions_dir,
            self._events,
            self.cluster is not None,
            self.require,
            self._exclusive,
            self._start_runner,
            self._check_new,
            self._add_runner,
            self.start_session,
        )
        self._deletion = SessionDeletion(
            registry,
            self.runners,
            self._locks,
            self.sessions_dir,
            self._events,
            self._leases,
            self.sockets,
            self.worker_ids,
            settings.command_timeout,
            self.require,
            self._exclusive,
            self._ready,
            self.request,
        )
        self._host = RunnerHost(
            settings,
            data_dir,
            self.sessions_dir,
            self.sockets,
            sandbox,
            self.proxy_policy,
            self.worker_ids,
            # Where a session's worker keeps its stores ("": files in its folder), given
            # to it with its keys (``GatewayStorage.worker_database``).
            worker_database,
            self.require,
            self.request,
            self._events,
            self.cluster,
        )

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        proc.configure(self.settings, self.sandbox)
        self.ksm = ksm.ensure_running(self.settings.ksm, self.settings.ksm_pages_to_scan)
        ksm.log_status(self.ksm)
        await self.sockets.start()
        self._host.share()
        await proc.launcher.start()
        # What an export or import cut short by a crash left (this gateway holds the lock).
        await asyncio.to_thread(shutil.rmtree, self.data_dir / archive.STAGING, True)
        # A session another node runs keeps the state that node gives it.
        elsewhere = await self._leases.run_elsewhere()
        for record in self.registry.all():
            self._add_runner(record.id)
            if record.id in elsewhere:
                continue
            if record.status not in (p.SessionState.STOPPED, p.SessionState.FAILED):
                with contextlib.suppress(LeaseLost):  # taken by another node meanwhile
                    self.registry.set_status(record.id, p.SessionState.STOPPED, None)
        self._events.start()
        self._tasks.append(asyncio.create_task(self._upkeep.run(), name="sampler"))
        self._tasks.append(asyncio.create_task(self._hibernation.run(), name="hibernate"))
        if self.cluster is not None:
            # Its sweeps bring back what no node runs, this node's former sessions first.
            await self.cluster.start()
            return
        wanted = [r.id for r in self.registry.all() if r.desired == "running"]
        if wanted:
            log.info("bringing back %d session(s) that were running", len(wanted))
        for session_id in wanted:
            try:
                await self._start_runner(session_id, self.runners[session_id])
            except PairingLimit as exc:
                reason = (
                    f"not started: {exc.pairing} sessions are pairing already (max_pairing "
                    f"{exc.limit}); start it when one has paired"
                )
                log.warning("[%s] %s", session_id, reason)
                await self._events.publish_status(session_id, p.SessionState.STOPPED, reason)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self._events.close()
        if self.cluster is not None:
            await self.cluster.quiet()  # no takeover while the workers stop
        await asyncio.gather(
            *(runner.stop() for runner in self.runners.values() if runner.running),
            return_exceptions=True,
        )
        if self.cluster is not None:
            await self.cluster.close()  # the other nodes take the sessions over now
        await proc.launcher.close()
        await self.sockets.close()

    # ----------------------------------------------------------- sessions

    def _add_runner(self, session_id: str) -> None:
        self.runners[session_id] = SessionRunner(
            session_id,
            self.sessions_dir / session_id,
            self.settings,
            self._host,
            self._start_slots,
        )

    def get(self, session_id: str) -> SessionRecord | None:
        return self.registry.get(check_session_id(session_id))

    def require(self, session_id: str) -> SessionRecord:
        record = self.get(session_id)
        if record is None and self.cluster is not None:
            self.registry.reload(session_id)  # made by another node meanwhile?
            record = self.get(session_id)
        if record is None:
            raise SessionMissing(session_id)
        if self.cluster is not None and record.id not in self.runners:
            self._add_runner(record.id)  # made by another node
        return record

    def list(self) -> list[SessionRecord]:
        return self.registry.all()

    def session_count(self) -> int:
        return len(self.runners)

    def worker_info(self, session_id: str) -> WorkerInfo | None:
        """The session's worker now; None for a session this gateway does not hold."""
        runner = self.runners.get(session_id)
        return None if runner is None else runner.info()

    def workers(self) -> dict[str, WorkerInfo]:
        """:meth:`worker_info` of every session."""
        return {session_id: runner.info() for session_id, runner in self.runners.items()}

    def node_of(self, session_id: str) -> str | None:
        """The cluster node running the session (None: none does, or no cluster)."""
        return self.cluster.node_of(session_id) if self.cluster is not None else None

    def nodes(self) -> dict[str, str]:
        """:meth:`node_of` every session some node runs."""
        return self.cluster.running() if self.cluster is not None else {}

    def is_running(self, session_id: str) -> bool:
        """Whether the session's worker is meant to be up (started, or restarting after a
        crash); False for a stopped, failed or hibernated session, or an unknown one."""
        runner = self.runners.get(session_id)
        return runner is not None and runner.running

    async def _drop_deleted_elsewhere(self, session_id: str) -> None:
        """A session deleted through another node leaves its idle runner here (and in the
        registry's memory until the node reads it again): gone from the database, it
        is dropped, for the id to be free here too."""
        runner = self.runners.get(session_id)
        if runner is None or runner.running:
            return
        self.registry.reload(session_id)
        if self.registry.get(session_id) is None:
            await self._drop_deleted(session_id)

    async def _drop_deleted(self, session_id: str) -> None:
        """Drop the idle runner, lock and folder of a session gone from the registry."""
        await self._deletion.deleted_elsewhere(session_id)

    def _check_new(self, session_id: str) -> None:
        """A new session may be added under ``session_id`` (``max_sessions``)."""
        check_session_id(session_id)
        if session_id in self.runners or self.registry.get(session_id) is not None:
            raise SessionExists(session_id)
        if self.cluster is None:
            limit, held = self.settings.max_sessions, len(self.runners)
        else:
            # The registry is the whole cluster's: its nodes' max_sessions add up (what
            # each node runs, placement and takeover keep under its own).
            limit, held = self.cluster.cluster_capacity(), len(self.registry.all())
        if limit and held >= limit:
            raise SessionLimit(limit, self.cluster is not None)

    async def create(self, session_id: str, config: SessionConfig, start: bool) -> SessionRecord:
        if self.cluster is not None:
            await self._drop_deleted_elsewhere(check_session_id(session_id))
        self._check_new(session_id)
        # a new session has no account: started, it pairs
        async with self._pairing.starting(session_id, None) if start else nullcontext():
            # In a cluster, "running" only once this node holds the lease: before, another
            # node's sweep would take the new session as one nobody runs.
            desired = "running" if start and self.cluster is None else "stopped"
            record = self.registry.create(session_id, config, desired)
            (self.sessions_dir / session_id).mkdir(mode=0o700, parents=True, exist_ok=True)
            self._add_runner(session_id)
            await self._events.publish_status(session_id, p.SessionState.STOPPED, None)
            if start:
                await self._leases.claim(session_id)
                if self.cluster is not None:
                    self.registry.set_desired(session_id, "running")
                await self.runners[session_id].start()
        return self.registry.get(session_id) or record

    async def _start_runner(self, session_id: str, runner: SessionRunner) -> None:
        """Every start of a stopped session's worker goes through here (the pairing cap)."""
        record = self.require(session_id)
        if runner.running:
            return
        if archive.exported_mark(self.sessions_dir / session_id) is not None:
            raise SessionExported(record.error or f"session {session_id!r} was exported")
        async with (
            self._leases.starting(session_id, runner),
            self._pairing.starting(session_id, record.me),
        ):
            await runner.start()

    def _exclusive(self, session_id: str) -> AbstractAsyncContextManager[SessionRunner]:
        """One lifecycle operation at a time per session (see :class:`LifecycleLocks`)."""
        self.require(session_id)
        return self._locks.hold(session_id)

    async def start_session(self, session_id: str) -> SessionRecord:
        async with self._exclusive(session_id) as runner:
            self.touch(session_id)
            await self._start_runner(session_id, runner)
            self.registry.set_desired(session_id, "running")
        return self.require(session_id)

    async def stop_session(self, session_id: str) -> SessionRecord:
        async with self._exclusive(session_id) as runner:
            self.registry.set_desired(session_id, "stopped")
            runner.hibernated = False  # stopped by hand: no request may wake it
            await runner.stop()
            await self._leases.release(session_id)
        return self.require(session_id)

    async def restart_session(self, session_id: str) -> SessionRecord:
        async with self._exclusive(session_id) as runner:
            if not runner.running:
                await self._start_runner(session_id, runner)
                self.registry.set_desired(session_id, "running")
                return self.require(session_id)
            self.registry.set_desired(session_id, "running")
            await runner.stop(p.SessionState.STARTING)
            await runner.start()
        return self.require(session_id)

    async def logout(self, session_id: str) -> None:
        async with self._exclusive(session_id):
            await self._command_held(session_id, p.Logout())

    async def _command_held(self, session_id: str, command: p.Command) -> p.Result:
        """:meth:`command`, for a caller that holds the session's lock."""
        timeout = self.settings.command_timeout
        await self._ready(session_id, min(timeout, 10.0))
        return await self.request(session_id, command, timeout)

    async def reconnect(self, session_id: str) -> bool:
        """Start a stopped session, or give a running one a fresh connection (a new
        worker). True when it had to be started."""
        async with self._exclusive(session_id) as runner:
            if not runner.running:
                self.touch(session_id)
                await self._start_runner(session_id, runner)
                self.registry.set_desired(session_id, "running")
                return True
            await self._command_held(session_id, p.Reconnect())
            return False

    async def delete_session(self, session_id: str) -> bool:
        """Log the device out of WhatsApp, then forget the session (see
        :meth:`SessionDeletion.delete`). False when a linked device is left on the phone."""
        return await self._deletion.delete(session_id)

    def update_config(self, session_id: str, config: SessionConfig) -> SessionRecord:
        self.require(session_id)
        self.registry.set_config(session_id, config)
        return self.require(session_id)

    async def ensure_running(self, session_id: str, timeout: float) -> SessionRunner:
        """The runner of a running session whose worker is ready to take commands."""
        runner = self.runners.get(session_id)
        if runner is not None and not runner.running and runner.hibernated:
            async with self._exclusive(session_id):  # waking is a start
                return await self._ready(session_id, timeout)
        return await self._ready(session_id, timeout)

    async def _ready(self, session_id: str, timeout: float) -> SessionRunner:
        """:meth:`ensure_running`, for a caller that holds the session's lock if needed."""
        record = self.require(session_id)
        runner = self.runners[session_id]
        self.touch(session_id)
        woke = not runner.running and runner.hibernated
        if woke:
            log.info("[%s] waking from hibernation", session_id)
            await self._start_runner(session_id, runner)
        if not runner.running:
            await self._leases.check_not_elsewhere(session_id)
            raise WorkerUnavailable(f"session {session_id!r} is not running; start it first")
        if not await runner.wait_ready(timeout):
            raise WorkerUnavailable(f"worker of session {session_id!r} is not ready yet")
        if woke and record.me is not None:
            await self._hibernation.wait_connected(session_id, timeout)
        return runner

    # --------------------------------------------------------------- login

    async def login_qr(self, session_id: str, timeout: float) -> p.QRCode:
        """Get the session to show a QR code and return it, as its ``session.qr`` events
        tell (the worker is not polled).

        A stopped session is started, a LOGGED_OUT or FAILED one restarted afresh. Raises
        :class:`AlreadyLoggedIn`, :class:`NoQrCode` after ``timeout`` s, or
        ``WorkerUnavailable`` if the session stops while waiting (its codes expired, it
        crashed too often).
        """
        record = self.require(session_id)
        running = self.is_running(session_id)
        if record.status in (p.SessionState.LOGGED_OUT, p.SessionState.FAILED) or not running:
            if running:
                await self.restart_session(session_id)
            else:
                await self.start_session(session_id)
        return await self._events.qr.wait(
            session_id, timeout, lambda: self.require(session_id), self.is_running
        )

    def touch(self, session_id: str) -> None:
        """A request for the session or WhatsApp activity on it: it is not idle."""
        self._hibernation.touch(session_id)

    async def request(self, session_id: str, command: p.Command, timeout: float) -> p.Result:
        started = time.perf_counter()
        try:
            return await self.sockets.request(session_id, command, timeout)
        finally:
            if self.observe_request is not None:
                self.observe_request(command, time.perf_counter() - started)

    def subscribe(self, listener: Listener, durable: bool = False) -> Callable[[], None]:
        """Get every event. A durable listener (the webhook outbox) must succeed before a
        worker event counts as applied; if it raises, the event is fetched again later."""
        return self._events.subscribe(listener, durable)

    async def command(
        self, session_id: str, command: p.Command, timeout: float | None = None
    ) -> p.Result:
        """Send a command to a running session's worker (waiting briefly for a fresh worker)."""
        timeout = self.settings.command_timeout if timeout is None else timeout
        await self.ensure_running(session_id, min(timeout, 10.0))
        return await self.request(session_id, command, timeout)
