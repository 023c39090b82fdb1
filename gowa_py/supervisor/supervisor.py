"""The supervisor: every session's runner, the IPC sockets, the registry, the event
sequencer and the sampler.

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
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
from yarl import URL

from gowa_py import protocol as p
from gowa_py.archive import session as archive
from gowa_py.archive.manifest import ArchivedSession, Manifest
from gowa_py.config import Settings
from gowa_py.errors import GowaError
from gowa_py.eventbody import EventBody
from gowa_py.ids import check_session_id
from gowa_py.ipc import GatewaySockets, WorkerUnavailable, endpoints
from gowa_py.models import SessionConfig
from gowa_py.registry import SessionRecord
from gowa_py.storage.interfaces import RegistryStorage
from gowa_py.supervisor import ksm
from gowa_py.supervisor import process as proc
from gowa_py.supervisor.identity import WorkerIds
from gowa_py.supervisor.qrlogin import QrCodes
from gowa_py.supervisor.runner import RunnerOwner, SessionRunner, StartRefused
from gowa_py.supervisor.sampler import Sample, Sampler
from gowa_py.supervisor.sequencer import EventSequencer
from gowa_py.webhooks.policy import BlockedTarget, TargetPolicy, Unresolvable, parse_networks

log = logging.getLogger("gowa.supervisor")

#: How often idle sessions are looked for (``idle_timeout`` is at least 60 s).
HIBERNATE_CHECK_S = 5.0

Listener = Callable[[EventBody], Awaitable[None]]


class SessionExists(GowaError):
    code = p.ErrorCode.SESSION_EXISTS

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} already exists")
        self.session_id = session_id


class SessionMissing(GowaError):
    code = p.ErrorCode.SESSION_NOT_FOUND

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} does not exist")
        self.session_id = session_id


class SessionLimit(GowaError):
    """The gateway holds ``max_sessions`` sessions already."""

    code = p.ErrorCode.SESSION_LIMIT

    def __init__(self, limit: int) -> None:
        super().__init__(f"this gateway holds {limit} sessions, its max_sessions; delete one first")
        self.limit = limit


class PairingLimit(GowaError):
    """``max_pairing`` sessions are pairing already."""

    code = p.ErrorCode.TOO_MANY_PAIRING

    def __init__(self, pairing: int, limit: int) -> None:
        super().__init__(
            f"{pairing} sessions are already waiting for a QR scan or pairing code "
            f"(max_pairing {limit}); try again shortly",
            headers={"Retry-After": "10"},
        )
        self.pairing = pairing
        self.limit = limit


class SessionBusy(GowaError):
    """Another lifecycle operation on the session did not finish in time."""

    code = p.ErrorCode.SESSION_BUSY

    def __init__(self, session_id: str, waited_s: float) -> None:
        super().__init__(
            f"session {session_id!r} is busy with other start/stop/restart/logout/reconnect "
            f"requests (waited {waited_s:g} s); try again",
            headers={"Retry-After": "1"},
        )
        self.session_id = session_id


class AlreadyLoggedIn(GowaError):
    """A QR login was asked of a session that is logged in."""

    code = p.ErrorCode.ALREADY_LOGGED_IN

    def __init__(self, session_id: str, jid: str) -> None:
        super().__init__(f"session {session_id!r} is already logged in as {jid}")
        self.session_id = session_id


class NoQrCode(GowaError):
    """The session showed no QR code within the wait (its state says why)."""

    code = p.ErrorCode.SESSION_UNAVAILABLE

    def __init__(
        self, session_id: str, waited: float, state: p.SessionState, error: str | None
    ) -> None:
        super().__init__(
            f"session {session_id!r} has no QR code after {waited:g} s "
            f"(status {state.value}{': ' + error if error else ''})"
        )
        self.session_id = session_id


class SessionExported(GowaError):
    """The session was exported to another gateway: running it here too would get one of
    the two logged out."""

    code = p.ErrorCode.SESSION_EXPORTED


class WorkerInfo(NamedTuple):
    """A session's worker as the HTTP layer may see it (a snapshot; compared as a whole
    by the cached session JSON, so it is a tuple)."""

    running: bool
    pid: int | None
    started_at: float | None
    restarts: int
    sample: Sample
    hibernated: bool


def _info(runner: SessionRunner) -> WorkerInfo:
    return WorkerInfo(
        runner.running,
        runner.pid,
        runner.started_at,
        runner.restarts,
        runner.sample,
        runner.hibernated,
    )


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        registry: RegistryStorage,
        data_dir: Path,
        sandbox: p.SandboxConfig | None = None,
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
        self._runner_owner: RunnerOwner = _Owner(self)
        self.sockets = GatewaySockets(
            command_endpoint, event_endpoint, self._on_event, self._on_hello
        )
        self.runners: dict[str, SessionRunner] = {}
        self._listeners: list[Listener] = []
        self._durable: list[Listener] = []
        self._background: set[asyncio.Task[None]] = set()
        self._sampler = Sampler(settings.pss_sample_interval)
        self._start_slots = asyncio.Semaphore(settings.effective_start_concurrency)
        self._lifecycle_locks: dict[str, asyncio.Lock] = {}
        #: Sessions between their pairing check and their runner running (see _pairing).
        self._pairing_starts: set[str] = set()
        self._sequencer = EventSequencer(
            registry,
            self._fetch_events,
            self._apply,
            self._log_replaced,
            self._worker_pid,
            settings.sample_interval,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._last_use: dict[str, float] = {}
        self.started_at = time.time()
        self.ksm = ksm.KsmStatus("off")
        self._qr = QrCodes()
        #: Called with every worker command and its round-trip time (the metrics).
        self.observe_request: Callable[[p.Command, float], None] | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        proc.configure(self.settings, self.sandbox)
        self.ksm = ksm.ensure_running(self.settings.ksm, self.settings.ksm_pages_to_scan)
        ksm.log_status(self.ksm)
        await self.sockets.start()
        self._share_with_workers()
        await proc.launcher.start()
        # What an export or import cut short by a crash left (this gateway holds the lock).
        await asyncio.to_thread(shutil.rmtree, self.data_dir / archive.STAGING, True)
        for record in self.registry.all():
            self.runners[record.id] = self._new_runner(record.id)
            if record.status not in (p.SessionState.STOPPED, p.SessionState.FAILED):
                self.registry.set_status(record.id, p.SessionState.STOPPED, None)
        self._sequencer.start()
        self._tasks.append(asyncio.create_task(self._sample_loop(), name="sampler"))
        self._tasks.append(asyncio.create_task(self._hibernate_loop(), name="hibernate"))
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
                await self._publish_status(session_id, p.SessionState.STOPPED, reason)

    def _share_with_workers(self) -> None:
        """What workers with a uid of their own must reach: the way to their folders,
        the sockets and the sandbox CA; their group passes, nobody else may look."""
        share = self.worker_ids.share
        share(self.data_dir, 0o710)
        share(self.sessions_dir, 0o710)
        for path in self.sockets.socket_paths():
            share(path.parent, 0o710)
            share(path, 0o660)
        if self.sandbox is not None:
            share(Path(self.sandbox.ca_file).parent, 0o710)
            share(Path(self.sandbox.ca_file), 0o640)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self._sequencer.close()
        await asyncio.gather(
            *(runner.stop() for runner in self.runners.values() if runner.running),
            return_exceptions=True,
        )
        await proc.launcher.close()
        await self.sockets.close()

    # ----------------------------------------------------------- sessions

    def _new_runner(self, session_id: str) -> SessionRunner:
        return SessionRunner(
            session_id,
            self.sessions_dir / session_id,
            self.settings,
            self._runner_owner,
            self._start_slots,
        )

    async def _proxy_for_worker(self, proxy: str | None) -> str | None:
        """The session's proxy judged again at every start, pinned to the address judged.

        The gateway judged it when it was set, but a name can answer differently since
        (DNS rebinding) and a config can predate the policy or a narrower allow list; the
        worker is given the address that passed, so it dials what was checked. An https
        proxy keeps its name (its certificate is for the name). The sandbox's proxy is the
        gateway's own and is not a session's config.
        """
        if proxy is None or self.sandbox is not None:
            return proxy
        url = URL(proxy)
        try:
            addresses = await self.proxy_policy.check_host(url.host or "", url.port or 1080)
        except BlockedTarget as exc:
            final = not isinstance(exc, Unresolvable)
            raise StartRefused(f"proxy refused: {exc}", final=final) from exc
        return proxy if url.scheme == "https" else str(url.with_host(addresses[0]))

    async def _worker_config(self, session_id: str) -> p.WorkerConfig:
        record = self.require(session_id)
        session_dir = self.sessions_dir / session_id
        session_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return p.WorkerConfig(
            session_id=session_id,
            session_dir=str(session_dir),
            command_endpoint=self.sockets.command_endpoint,
            event_endpoint=self.sockets.event_endpoint,
            parent_pid=os.getpid(),
            server_key=self.sockets.server_key,
            proxy=await self._proxy_for_worker(record.config.proxy),
            settings=record.config.worker_settings(),
            sandbox=self.sandbox,
            log_level=self.settings.worker_log_level.upper(),
            qr_limit=self.settings.qr_limit,
            silence_timeout_s=self.settings.silence_timeout,
            max_download_bytes=int(self.settings.max_download_mb * 1024 * 1024),
            run_as=self.worker_ids.run_as(session_id, session_dir),
            log_max_bytes=int(self.settings.worker_log_max_mb * 1024 * 1024),
            memory_limit_bytes=self.settings.worker_memory_mb * 1024 * 1024,
        )

    def get(self, session_id: str) -> SessionRecord | None:
        return self.registry.get(check_session_id(session_id))

    def require(self, session_id: str) -> SessionRecord:
        record = self.get(session_id)
        if record is None:
            raise SessionMissing(session_id)
        return record

    def list(self) -> list[SessionRecord]:
        return self.registry.all()

    def session_count(self) -> int:
        return len(self.runners)

    def worker_info(self, session_id: str) -> WorkerInfo | None:
        """The session's worker now; None for a session this gateway does not hold."""
        runner = self.runners.get(session_id)
        return None if runner is None else _info(runner)

    def workers(self) -> dict[str, WorkerInfo]:
        """:meth:`worker_info` of every session."""
        return {session_id: _info(runner) for session_id, runner in self.runners.items()}

    def is_running(self, session_id: str) -> bool:
        """Whether the session's worker is meant to be up (started, or restarting after a
        crash); False for a stopped, failed or hibernated session, or an unknown one."""
        runner = self.runners.get(session_id)
        return runner is not None and runner.running

    async def create(self, session_id: str, config: SessionConfig, start: bool) -> SessionRecord:
        check_session_id(session_id)
        if session_id in self.runners or self.registry.get(session_id) is not None:
            raise SessionExists(session_id)
        limit = self.settings.max_sessions
        if limit and len(self.runners) >= limit:
            raise SessionLimit(limit)
        if start:  # a new session has no account: it starts by pairing
            self._check_pairing(session_id, None)
            self._pairing_starts.add(session_id)
        try:
            record = self.registry.create(session_id, config, "running" if start else "stopped")
            (self.sessions_dir / session_id).mkdir(mode=0o700, parents=True, exist_ok=True)
            self.runners[session_id] = self._new_runner(session_id)
            await self._publish_status(session_id, p.SessionState.STOPPED, None)
            if start:
                await self.runners[session_id].start()
        finally:
            self._pairing_starts.discard(session_id)
        return self.registry.get(session_id) or record

    def _pairing(self) -> set[str]:
        """The sessions pairing or about to: a worker running, or being started, for a
        session without an account (starting, showing QR codes or a pairing code)."""
        pairing = set(self._pairing_starts)
        for record in self.registry.all():
            runner = self.runners.get(record.id)
            if record.me is None and runner is not None and runner.running:
                pairing.add(record.id)
        return pairing

    def _check_pairing(self, session_id: str, me: p.Me | None) -> None:
        """Refuse a start that would put more than ``max_pairing`` sessions into pairing:
        each pairing worker holds a connection and QR state, and a storm of them is what
        exhausted memory in other gateways. Sessions with an account are not counted."""
        limit = self.settings.max_pairing
        if limit <= 0 or me is not None:
            return
        pairing = self._pairing()
        if session_id not in pairing and len(pairing) >= limit:
            raise PairingLimit(len(pairing), limit)

    async def _start_runner(self, session_id: str, runner: SessionRunner) -> None:
        """Every start of a stopped session's worker goes through here (the pairing cap)."""
        record = self.require(session_id)
        if runner.running:
            return
        if archive.exported_mark(self.sessions_dir / session_id) is not None:
            raise SessionExported(record.error or f"session {session_id!r} was exported")
        self._check_pairing(session_id, record.me)
        self._pairing_starts.add(session_id)
        try:
            await runner.start()
        finally:
            self._pairing_starts.discard(session_id)

    @asynccontextmanager
    async def _exclusive(self, session_id: str) -> AsyncIterator[SessionRunner]:
        """One lifecycle operation at a time per session (start, stop, restart, logout,
        reconnect, delete), in the order they arrived.

        Interleaved, a restart's stop could meet another request's start half-way, and
        the session was left to whichever finished last. A request waits at most
        ``command_timeout`` s for the ones before it (then ``SessionBusy``); each
        operation is bounded itself (``stop_timeout``, ``start_timeout``).
        """
        self.require(session_id)
        lock = self._lifecycle_locks.setdefault(session_id, asyncio.Lock())
        wait = self.settings.command_timeout
        try:
            async with asyncio.timeout(wait):
                await lock.acquire()
        except TimeoutError:
            raise SessionBusy(session_id, wait) from None
        try:
            runner = self.runners.get(session_id)
            if runner is None or self._lifecycle_locks.get(session_id) is not lock:
                raise SessionMissing(session_id)  # deleted while this request waited
            yield runner
        finally:
            lock.release()

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
        """Log the device out of WhatsApp, then forget the session. True when no linked
        device is left behind on the phone; False when the session was logged in but could
        not be logged out (stopped by hand or not connected; a hibernated one is woken for it):
        the phone still lists it until removed there."""
        async with self._exclusive(session_id):
            unlinked = await self._unlink(session_id)
            runner = self.runners.pop(session_id)
            self._lifecycle_locks.pop(session_id, None)
            await runner.stop()
            await self._dispatch(
                _gateway_event(session_id, p.SESSION_DELETED, {"unlinked": unlinked})
            )
            self.registry.delete(session_id)
            self._sequencer.forget(session_id)
            self.sockets.revoke(session_id)
            folder = self.sessions_dir / session_id
            if folder.resolve().parent == self.sessions_dir.resolve():
                await asyncio.to_thread(shutil.rmtree, folder, True)
            self.worker_ids.release(session_id)
            return unlinked

    async def _unlink(self, session_id: str) -> bool:
        """WhatsApp's logout (``remove-companion-device``) for a session being deleted.
        An exported session's device lives on where it was imported: nothing is left
        behind here, and it must not be unlinked."""
        record = self.require(session_id)
        if record.me is None or archive.exported_mark(self.sessions_dir / session_id) is not None:
            return True
        timeout = min(self.settings.command_timeout, 10.0)
        try:
            await self._ready(session_id, timeout)  # a hibernated session is woken for it
            if self.require(session_id).status is not p.SessionState.CONNECTED:
                return False
            await self.request(session_id, p.Logout(), timeout)
        except (GowaError, TimeoutError) as exc:
            log.warning("[%s] deleted without logging out: %s", session_id, exc)
            return False
        return True

    # ------------------------------------------------------------ transfer

    @asynccontextmanager
    async def quiesced(self, session_id: str, resume: bool) -> AsyncIterator[SessionRecord]:
        """The session with its worker stopped, for the caller to read its files (an
        export), under its lifecycle lock. A worker that ran is started again afterwards
        when ``resume``, or when the caller failed."""
        async with self._exclusive(session_id) as runner:
            was_running = runner.running
            if was_running:
                await runner.stop()
            done = False
            try:
                yield self.require(session_id)
                done = True
            finally:
                if was_running and (resume or not done):
                    await self._start_runner(session_id, runner)

    async def mark_exported(self, session_id: str, manifest: Manifest) -> None:
        """The session was moved away (inside :meth:`quiesced`): it stays stopped here, and
        says why, until it is deleted or the mark removed by hand."""
        self.registry.set_desired(session_id, "stopped")
        error = archive.mark_exported(self.sessions_dir / session_id, manifest)
        await self._publish_status(session_id, p.SessionState.STOPPED, error)

    async def adopt(
        self, session_id: str, folder: Path, session: ArchivedSession, start: bool
    ) -> SessionRecord:
        """Install an unpacked session archive as ``session_id`` and start it."""
        check_session_id(session_id)
        if session_id in self.runners or self.registry.get(session_id) is not None:
            raise SessionExists(session_id)
        limit = self.settings.max_sessions
        if limit and len(self.runners) >= limit:
            raise SessionLimit(limit)
        desired = "running" if start else "stopped"
        # On the loop: the registry's connection belongs to it (a rename and a few rows).
        archive.install(self.registry, self.sessions_dir, session_id, folder, session, desired)
        self.runners[session_id] = self._new_runner(session_id)
        await self._publish_status(session_id, p.SessionState.STOPPED, None)
        if start:
            await self.start_session(session_id)
        return self.require(session_id)

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
            raise WorkerUnavailable(f"session {session_id!r} is not running; start it first")
        if not await runner.wait_ready(timeout):
            raise WorkerUnavailable(f"worker of session {session_id!r} is not ready yet")
        if woke and record.me is not None:
            await self._wait_connected(session_id, timeout)
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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            record = self.require(session_id)
            if record.status == p.SessionState.CONNECTED and record.me is not None:
                raise AlreadyLoggedIn(session_id, record.me.jid)
            code = self._qr.current(session_id)
            if code is not None:
                return code
            if not self.is_running(session_id):
                raise WorkerUnavailable(f"session {session_id!r} is not running; start it first")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise NoQrCode(session_id, timeout, record.status, record.error)
            await self._qr.changed(session_id, remaining)

    # --------------------------------------------------------- hibernation

    def touch(self, session_id: str) -> None:
        """A request for the session or WhatsApp activity on it: it is not idle."""
        self._last_use[session_id] = time.monotonic()

    async def _wait_connected(self, session_id: str, timeout: float) -> None:
        """After a wake-up, give a logged-in session the time to reconnect (the caller waits)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.registry.get(session_id)
            if record is None or record.status == p.SessionState.CONNECTED:
                return
            await asyncio.sleep(0.05)

    async def _hibernate_loop(self) -> None:
        """Stop the worker of a logged-in session idle for its ``idle_timeout`` seconds."""
        while True:
            await asyncio.sleep(HIBERNATE_CHECK_S)
            now = time.monotonic()
            for record in self.registry.all():
                runner = self.runners.get(record.id)
                idle_timeout = record.config.idle_timeout
                if not idle_timeout or runner is None or not runner.running:
                    continue
                if record.status not in (p.SessionState.CONNECTED, p.SessionState.DISCONNECTED):
                    continue  # one waiting for a QR scan or starting is not idle
                if now - self._last_use.setdefault(record.id, now) < idle_timeout:
                    continue
                lock = self._lifecycle_locks.get(record.id)
                if lock is not None and lock.locked():
                    continue  # a request is acting on it: not idle
                with contextlib.suppress(SessionBusy, SessionMissing):
                    async with self._exclusive(record.id):
                        if not runner.running:
                            continue
                        log.info("[%s] idle for %d s: hibernating", record.id, idle_timeout)
                        runner.hibernated = True
                        await runner.stop(
                            p.SessionState.STOPPED,
                            f"hibernated after {idle_timeout} s idle; the next request wakes it",
                        )

    async def request(self, session_id: str, command: p.Command, timeout: float) -> p.Result:
        started = time.perf_counter()
        try:
            return await self.sockets.request(session_id, command, timeout)
        finally:
            if self.observe_request is not None:
                self.observe_request(command, time.perf_counter() - started)

    async def command(
        self, session_id: str, command: p.Command, timeout: float | None = None
    ) -> p.Result:
        """Send a command to a running session's worker (waiting briefly for a fresh worker)."""
        timeout = self.settings.command_timeout if timeout is None else timeout
        await self.ensure_running(session_id, min(timeout, 10.0))
        return await self.request(session_id, command, timeout)

    # -------------------------------------------------------------- events

    def subscribe(self, listener: Listener, durable: bool = False) -> Callable[[], None]:
        """Get every event. A durable listener (the webhook outbox) must succeed before a
        worker event counts as applied; if it raises, the event is fetched again later."""
        listeners = self._durable if durable else self._listeners
        listeners.append(listener)
        return lambda: listeners.remove(listener)

    async def _dispatch(self, event: p.Event, strict: bool = False) -> None:
        """Hand ``event`` to the listeners, as one :class:`EventBody` built for all of them;
        ``strict`` lets a durable listener's failure propagate (worker events, which can be
        fetched again), else it is logged."""
        runner = self.runners.get(event.session_id)
        self._qr.observe(event, runner.started_at if runner is not None else None)
        body = EventBody(event, self.registry.get(event.session_id))
        for listener in list(self._durable):
            try:
                await listener(body)
            except Exception:
                if strict:
                    raise
                log.exception("durable listener failed on %s", event.name)
        for listener in list(self._listeners):
            try:
                await listener(body)
            except Exception:
                log.exception("event listener failed on %s", event.name)

    async def _publish_status(
        self, session_id: str, status: p.SessionState, error: str | None
    ) -> None:
        previous = self.registry.get(session_id)
        self.registry.set_status(session_id, status, error)
        runner = self.runners.get(session_id)
        payload: dict[str, Any] = {
            "status": status.value,
            "previous": previous.status.value if previous else None,
            "error": error,
            # Stopped for being idle: the next request starts it again by itself.
            "hibernating": status is p.SessionState.STOPPED
            and runner is not None
            and runner.hibernated,
        }
        await self._dispatch(_gateway_event(session_id, p.SESSION_STATUS, payload))

    async def _set_status(self, session_id: str, status: p.SessionState, error: str | None) -> None:
        if session_id in self.runners and self.registry.get(session_id) is not None:
            await self._publish_status(session_id, status, error)

    async def _notice(self, session_id: str, name: str, payload: dict[str, Any]) -> None:
        await self._dispatch(_gateway_event(session_id, name, payload))

    async def _on_hello(self, hello: p.Hello) -> None:
        runner = self.runners.get(hello.session_id)
        if runner is None:
            return
        runner.hello(hello)
        if self.registry.get(hello.session_id) is None or runner.pid != hello.pid:
            return
        await self._sequencer.hello(hello.session_id, hello.pid, hello.event_log)

    def _worker_pid(self, session_id: str) -> int | None:
        runner = self.runners.get(session_id)
        return None if runner is None else runner.pid

    async def _fetch_events(self, session_id: str, after_seq: int, limit: int) -> Sequence[p.Event]:
        command = p.ReplayEvents(after_seq=after_seq, limit=limit)
        result = await self.request(session_id, command, 5.0)
        return result.events if isinstance(result, p.Events) else []

    async def _log_replaced(self, session_id: str, reason: str) -> None:
        await self._dispatch(_gateway_event(session_id, p.EVENT_LOG_REPLACED, {"reason": reason}))

    async def _on_event(self, event: p.Event) -> None:
        if event.session_id not in self.runners:
            return
        if not event.name.startswith(("log", "session.")):
            self.touch(event.session_id)
        if event.seq == 0:
            await self._dispatch(event)
            return
        await self._sequencer.on_event(event)

    async def _park(self, session_id: str, reason: str) -> None:
        """Stop a session that should not run on (its QR codes expired), keeping why."""
        with contextlib.suppress(SessionBusy, SessionMissing):
            async with self._exclusive(session_id) as runner:
                self.registry.set_desired(session_id, "stopped")
                await runner.stop(p.SessionState.STOPPED, reason)

    async def _apply(self, event: p.Event) -> None:
        session_id = event.session_id
        lost: p.Event | None = None
        change = p.read_payload(event, p.StatusPayload) if event.name == p.SESSION_STATUS else None
        if change is not None:
            record = self.registry.get(session_id)
            error = change.error
            if change.status is p.SessionState.SCAN_QR_CODE and record and record.me:
                event, lost = self._login_lost(event, record.me)
                error = lost.payload["message"]
            self.registry.set_status(session_id, change.status, error, event.timestamp)
            if change.me is not None and change.me.jid:
                self.registry.set_me(
                    session_id, p.Me(jid=change.me.jid, push_name=change.me.push_name)
                )
            elif change.status is p.SessionState.LOGGED_OUT:
                self.registry.set_me(session_id, None)
        await self._dispatch(event, strict=True)
        if lost is not None:
            await self._dispatch(lost)
        active = event.name.startswith("message") or event.name == "session.pair"
        self.registry.set_event_seq(session_id, event.seq, event.timestamp if active else None)
        if event.name == p.SESSION_QR_EXPIRED:
            expired = p.read_payload(event, p.QRExpiredPayload)
            message = (expired and expired.message) or p.QRExpiredPayload().message
            task = asyncio.create_task(self._park(session_id, message))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _login_lost(self, event: p.Event, me: p.Me) -> tuple[p.Event, p.Event]:
        """A logged-in session asks for a QR code: its keys are gone from whatsmeow.db
        (deleted, truncated, an older copy restored) without a logout or an unlink, which
        would have said so. Forget the account and say why, instead of showing the old
        JID beside a QR code; returns the status event with the reason, and a
        ``session.login_lost`` event."""
        message = (
            f"the login of {me.jid} was lost: whatsmeow.db no longer holds this device "
            "(deleted, truncated or replaced by an older copy?); scan a new QR code to link "
            "the session again"
        )
        log.error("[%s] %s", event.session_id, message)
        self.registry.set_me(event.session_id, None)
        status = msgspec.structs.replace(event, payload={**event.payload, "error": message})
        notice = _gateway_event(
            event.session_id, "session.login_lost", {"jid": me.jid, "message": message}
        )
        return status, notice

    # -------------------------------------------------------------- metrics

    async def _sample_loop(self) -> None:
        interval = self.settings.sample_interval
        retention = self.settings.metrics_retention_hours * 3600
        last_prune = 0.0
        while True:
            await asyncio.sleep(interval)
            try:
                await self._check_disks()
                await self._sample_once()
                now = time.time()
                if now - last_prune > 600:
                    self.registry.prune_samples(now - retention)
                    last_prune = now
            except Exception:
                log.exception("sampling failed")

    async def _check_disks(self) -> None:
        """Stop a running session whose disk is full, as FAILED with the reason: its worker
        could not store keys, so it would ack messages it cannot decrypt and lose them;
        stopped, WhatsApp keeps them queued until the session is started again."""
        floor = self.settings.min_free_disk_mb * 1024 * 1024
        for session_id, runner in list(self.runners.items()):
            if floor <= 0 or not runner.running:
                continue
            try:
                free = (await asyncio.to_thread(shutil.disk_usage, runner.session_dir)).free
            except OSError:
                continue
            if free < floor:
                error = (
                    f"disk full: {free // 1024} KiB free for the session folder (below "
                    f"min_free_disk_mb = {self.settings.min_free_disk_mb:g}); free some space "
                    "and start the session again"
                )
                log.error("[%s] %s", session_id, error)
                with contextlib.suppress(SessionBusy, SessionMissing):
                    async with self._exclusive(session_id):
                        await runner.stop(p.SessionState.FAILED)
                        await self._publish_status(session_id, p.SessionState.FAILED, error)

    async def _sample_once(self) -> None:
        pids = {runner.pid: runner for runner in self.runners.values() if runner.pid}
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
        self.registry.add_samples(rows)


class _Owner:
    """The supervisor as its runners see it (:class:`RunnerOwner`), kept off its public
    surface: minting a worker's keys is for a runner starting one, not for a route."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    async def worker_config(self, session_id: str) -> p.WorkerConfig:
        return await self._supervisor._worker_config(session_id)

    def worker_keys(self, session_id: str) -> p.WorkerKeys:
        keys = self._supervisor.sockets.admit(session_id)
        return msgspec.structs.replace(
            keys, database_url=self._supervisor.settings.database_url or ""
        )

    async def request(self, session_id: str, command: p.Command, timeout: float) -> p.Result:
        return await self._supervisor.request(session_id, command, timeout)

    async def runner_status(
        self, session_id: str, status: p.SessionState, error: str | None
    ) -> None:
        await self._supervisor._set_status(session_id, status, error)

    async def runner_notice(self, session_id: str, name: str, payload: dict[str, Any]) -> None:
        await self._supervisor._notice(session_id, name, payload)


def _gateway_event(session_id: str, name: str, payload: dict[str, Any]) -> p.Event:
    return p.Event(
        id=uuid.uuid4().hex,
        session_id=session_id,
        name=name,
        timestamp=time.time(),
        payload=payload,
    )
