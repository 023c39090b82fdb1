"""The life of one session's worker: spawn, wait for hello, watch, restart or give up.

One :class:`SessionRunner` per session and one asyncio task per running session. A
worker that exits unexpectedly is restarted with exponential backoff; after
``crash_limit`` crashes inside ``crash_window`` seconds the session is FAILED and waits
for a manual start. A worker that stops answering pings is killed and restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from gowa_py import protocol as p
from gowa_py.backoff import CrashWindow, backoff_delay
from gowa_py.errors import GowaError
from gowa_py.ipc import WorkerError, WorkerUnavailable
from gowa_py.supervisor import exitreason, memroom
from gowa_py.supervisor import process as proc
from gowa_py.supervisor.sampler import Sample

if TYPE_CHECKING:
    from gowa_py.config import Settings

log = logging.getLogger("gowa.supervisor")


class RunnerOwner(Protocol):
    """What a runner asks of the one that owns it (the supervisor): everything it needs
    beyond its own process, in one typed place."""

    async def worker_config(self, session_id: str) -> p.WorkerConfig:
        """The config of the next worker (raises :class:`StartRefused`)."""

    async def worker_keys(self, session_id: str) -> p.WorkerKeys:
        """Credentials for the next worker; the previous worker's stop working."""

    async def request(self, session_id: str, command: p.Command, timeout: float) -> p.Result:
        """A command to the current worker (pings, shutdown)."""

    async def runner_status(
        self, session_id: str, status: p.SessionState, error: str | None
    ) -> None:
        """The session's state as the runner sees it (starting, stopped, failed)."""

    async def runner_notice(self, session_id: str, name: str, payload: dict[str, Any]) -> None:
        """A gateway event about the worker (the watchdog killed it)."""


class StartRefused(GowaError):
    """The session's worker may not start as configured (its reason is the message).

    ``final``: starting again cannot help (a refused proxy), so the session fails at once;
    otherwise the attempt counts as a crash and is retried with backoff (a name that did
    not resolve).
    """

    def __init__(self, message: str, final: bool) -> None:
        super().__init__(message)
        self.final = final


class WorkerInfo(NamedTuple):
    """A session's worker as the HTTP layer may see it (a snapshot; compared as a whole
    by the cached session JSON, so it is a tuple)."""

    running: bool
    pid: int | None
    started_at: float | None
    restarts: int
    sample: Sample
    hibernated: bool


class SessionRunner:
    def __init__(
        self,
        session_id: str,
        session_dir: Path,
        settings: Settings,
        owner: RunnerOwner,
        start_slots: asyncio.Semaphore,
    ) -> None:
        self.session_id = session_id
        self.session_dir = session_dir
        self._settings = settings
        self._owner = owner
        self._start_slots = start_slots
        self.process: proc.WorkerProcess | None = None
        self.started_at: float | None = None
        self.restarts = 0
        self.sample = Sample()
        self._crashes = CrashWindow(settings.crash_limit, settings.crash_window)
        self._hello = asyncio.Event()
        #: Where the current worker's output starts in worker.log.
        self._log_at = (0, 0)
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        #: Stopped for being idle (``idle_timeout``); the next request starts it again.
        self.hibernated = False

    @property
    def pid(self) -> int | None:
        if self.process is None or self.process.returncode is not None:
            return None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def info(self) -> WorkerInfo:
        return WorkerInfo(
            self.running, self.pid, self.started_at, self.restarts, self.sample, self.hibernated
        )

    def hello(self, message: p.Hello) -> None:
        if self.pid == message.pid:
            self._hello.set()

    async def start(self) -> None:
        async with self._lock:
            if self.running:
                return
            self.hibernated = False
            self._crashes.reset()
            self._task = asyncio.create_task(self._lifecycle(), name=f"runner-{self.session_id}")

    async def stop(
        self, status: p.SessionState = p.SessionState.STOPPED, error: str | None = None
    ) -> None:
        async with self._lock:
            task, self._task = self._task, None
            if task is not None:
                await _cancel(task)
            await self._end_process(graceful=True)
            await self._owner.runner_status(self.session_id, status, error)

    async def fence(self) -> None:
        """Kill the worker at once and keep it down, without waiting for a stop in
        progress: the session's lease is no longer this node's, so another node may
        connect its device any moment now."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        await self._kill_process()
        if task is not None:
            await _cancel(task)
        await self._kill_process()  # one spawned while the task was being cancelled

    async def _kill_process(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            await proc.kill(process)

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until the current worker said hello (used by requests right after a start)."""
        if self._hello.is_set():
            # The usual case: no wait_for task, no trip through a busy event loop.
            return True
        try:
            await asyncio.wait_for(self._hello.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def kill_now(self, reason: str) -> None:
        """Kill the worker hard; the lifecycle treats it as a crash and restarts it."""
        process = self.process
        if process is not None and process.returncode is None:
            log.warning("[%s] killing worker pid %d: %s", self.session_id, process.pid, reason)
            await self._owner.runner_notice(
                self.session_id, "session.watchdog", {"action": "kill", "reason": reason}
            )
            await proc.kill(process)

    # ------------------------------------------------------------- lifecycle

    async def _lifecycle(self) -> None:
        while True:
            await self._owner.runner_status(self.session_id, p.SessionState.STARTING, None)
            try:
                crashed_reason = await self._run_once()
            except StartRefused as exc:
                log.error("[%s] not started: %s", self.session_id, exc)
                await self._owner.runner_status(self.session_id, p.SessionState.FAILED, str(exc))
                return
            self.restarts += 1
            code = self.process.returncode if self.process is not None else None
            if code == p.EXIT_RESTART:
                log.info("[%s] worker asked for a fresh process; restarting", self.session_id)
                continue
            reason = await asyncio.to_thread(exitreason.take_exit_reason, self.session_dir)
            if reason is None and code not in (0, None):
                reason = await asyncio.to_thread(
                    exitreason.go_failure, self.session_dir, self._log_at
                )
            if reason is not None:
                crashed_reason = f"{crashed_reason}: {reason}"
            if code == p.EXIT_STORE_DAMAGED:
                message = f"{reason or crashed_reason}; start the session again once repaired"
                log.error("[%s] %s", self.session_id, message)
                await self._owner.runner_status(self.session_id, p.SessionState.FAILED, message)
                return
            if self._crashes.record():
                message = (
                    f"worker crashed {self._crashes.limit} times in "
                    f"{self._crashes.window_s:g} s ({crashed_reason}); start it again by hand"
                )
                log.error("[%s] %s", self.session_id, message)
                await self._owner.runner_status(self.session_id, p.SessionState.FAILED, message)
                return
            # A one-off crash is restarted at once; repeated ones back off 1, 2, 4... s.
            recent = self._crashes.recent
            delay = 0.0 if recent <= 1 else backoff_delay(recent - 2, cap=60.0, jitter=0.1)
            log.warning(
                "[%s] worker ended (%s); restart %d in %.1f s",
                self.session_id,
                crashed_reason,
                self.restarts,
                delay,
            )
            await self._owner.runner_status(
                self.session_id,
                p.SessionState.STARTING,
                f"worker ended ({crashed_reason}); restarting in {delay:.1f} s",
            )
            await asyncio.sleep(delay)

    async def _hold_for_memory(self, why: str) -> None:
        log.warning("[%s] %s", self.session_id, why)
        await self._owner.runner_status(self.session_id, p.SessionState.STARTING, why)

    async def _run_once(self) -> str:
        """Run one worker until it dies; returns why it ended."""
        self._hello.clear()
        # A reason left by an earlier worker must not be read as this one's.
        await asyncio.to_thread(exitreason.take_exit_reason, self.session_dir)
        self._log_at = await asyncio.to_thread(exitreason.log_position, self.session_dir)
        async with self._start_slots:
            waited = await memroom.wait_for_room(
                self._settings.start_min_available_mb, self._hold_for_memory
            )
            if waited:
                log.info("[%s] started after %.1f s waiting for memory", self.session_id, waited)
            try:
                config = await self._owner.worker_config(self.session_id)
            except StartRefused as exc:
                if exc.final:
                    raise
                self.process = None  # not the last worker's exit code: this start failed
                return str(exc)
            keys = await self._owner.worker_keys(self.session_id)
            self.process = await proc.spawn(config, keys)
            self.started_at = time.time()
            log.info("[%s] worker started, pid %d", self.session_id, self.process.pid)
            exited = asyncio.create_task(self.process.wait())
            hello = asyncio.create_task(self._hello.wait())
            try:
                await asyncio.wait(
                    {exited, hello},
                    timeout=self._settings.start_timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                hello.cancel()
        if not self._hello.is_set():
            if not exited.done():
                await proc.kill(self.process)
                return f"no hello within {self._settings.start_timeout:g} s"
            return f"exit code {self.process.returncode} during start-up"
        return await self._watch(exited)

    async def _watch(self, exited: asyncio.Task[int]) -> str:
        failures = 0
        interval = self._settings.health_interval
        while True:
            done, _ = await asyncio.wait({exited}, timeout=interval)
            if done:
                return f"exit code {exited.result()}"
            try:
                await self._owner.request(self.session_id, p.Ping(), self._settings.health_timeout)
                failures = 0
            except (WorkerUnavailable, WorkerError) as exc:
                failures += 1
                log.warning(
                    "[%s] health ping %d/%d failed: %s",
                    self.session_id,
                    failures,
                    self._settings.health_failures,
                    exc,
                )
                if failures >= self._settings.health_failures:
                    await self.kill_now(f"{failures} health pings unanswered")
                    await exited
                    return "killed by the watchdog: not answering pings"

    async def _end_process(self, graceful: bool) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        if graceful:
            try:
                await self._owner.request(self.session_id, p.Shutdown(), 2.0)
            except (WorkerUnavailable, WorkerError):
                pass  # not connected yet (or wedged): SIGTERM below is the polite fallback
            else:
                try:
                    async with asyncio.timeout(self._settings.stop_timeout):
                        await process.wait()
                    return
                except TimeoutError:
                    log.warning("[%s] worker ignored shutdown; terminating", self.session_id)
        await proc.terminate(process, 3.0)


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for its end, cancelling again while it runs on: a
    cancellation can be lost on the way (3.11's ``wait_for`` drops one that meets a
    result), and a stop waiting on such a task held the session's lock for good."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()
