"""Launching one worker OS process, and ending it: politely, then firmly.

Two modes (``worker_mode`` in the settings):

* ``zygote`` (default): workers are forked by :mod:`workers.zygote`, a child of the
  gateway that has already imported every Python module a worker needs, so those pages
  are shared copy-on-write and a worker starts in milliseconds. A forked worker is not a
  child of the gateway: the zygote sends a pidfd for it (exit detection and signals that
  cannot hit a recycled pid) and reports its exit code. If the zygote dies it is started
  again; workers it forked keep running (their exit code then reads 255, as asyncio
  reports an unknown child). When the zygote cannot fork, the worker is started as a
  plain subprocess instead, so a session never stays down because of the zygote.
* ``subprocess``: ``python -m workers`` per worker, as a direct child.

:func:`spawn` is the single entry point; both modes return an object with the part of
:class:`asyncio.subprocess.Process` the runner uses (``pid``, ``returncode``, ``wait()``,
``send_signal()``, ``kill()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Protocol

from gowa_py import protocol as p
from gowa_py.config import SECRET_ENV, Settings
from gowa_py.errors import GowaError

log = logging.getLogger("gowa.supervisor")

#: Bytes of a worker's exit reason shown in the session's ``error``.
MAX_EXIT_REASON = 2000
#: How the Go runtime's fatal errors and panics begin on stderr, and how much of the end
#: of worker.log is searched for one.
GO_FAILURE_PREFIXES = ("fatal error: ", "panic: ")
LOG_TAIL_BYTES = 64 * 1024
UNKNOWN_EXIT = 255
ZYGOTE_READY_TIMEOUT = 30.0
MAX_PACKET = 256 * 1024


class WorkerProcess(Protocol):
    pid: int

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


class ZygoteError(GowaError, RuntimeError):
    """The zygote is not running or could not fork."""


def _open_log(config: p.WorkerConfig) -> int:
    """The worker's stdout/stderr file, rotated if it is past its limit (the worker
    rotates it while it runs: workers/logfile.py), and the worker's own."""
    session_dir = Path(config.session_dir)
    path = session_dir / "worker.log"
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > config.log_max_bytes:
            path.replace(session_dir / "worker.log.1")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    if config.run_as is not None:
        os.fchown(fd, config.run_as.uid, config.run_as.gid)
    return fd


def take_exit_reason(session_dir: Path) -> str | None:
    """Why the session's last worker failed, if it said so (read once, then removed)."""
    path = session_dir / p.EXIT_REASON_FILE
    try:
        with path.open("rb") as file:
            reason = file.read(MAX_EXIT_REASON).decode("utf-8", "replace").strip()
    except FileNotFoundError:
        return None
    path.unlink(missing_ok=True)
    return reason or None


def log_position(session_dir: Path) -> tuple[int, int]:
    """Where worker.log ends now, as (inode, size): a new worker's output starts there."""
    try:
        info = (session_dir / "worker.log").stat()
    except FileNotFoundError:
        return (0, 0)
    return (info.st_ino, info.st_size)


def go_failure(session_dir: Path, since: tuple[int, int]) -> str | None:
    """The Go runtime's last words in worker.log after ``since`` (:func:`log_position`),
    if it died of a fatal error or a panic: those bypass Python, so no exit reason is left
    for them."""
    try:
        with (session_dir / "worker.log").open("rb") as file:
            inode, offset = since
            size = file.seek(0, os.SEEK_END)
            if os.fstat(file.fileno()).st_ino != inode or offset > size:
                offset = 0  # rotated since: all of it is the new worker's
            file.seek(max(offset, size - LOG_TAIL_BYTES))
            text = file.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    lines = [line for line in text.splitlines() if line.startswith(GO_FAILURE_PREFIXES)]
    return lines[-1].strip()[:MAX_EXIT_REASON] if lines else None


def _keys_pipe(keys: p.WorkerKeys) -> int:
    """A pipe holding a worker's keys, its write end closed; returns the read end.

    Not the environment: a process's exec-time environment stays readable in
    ``/proc/<pid>/environ`` for its whole life by whoever may read that file (the same
    uid, root), while a pipe gives its contents once, to the holder of the descriptor,
    which the worker reads and closes first thing. The zygote passes it on unread.
    """
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, p.encode(keys))  # under 100 bytes: within PIPE_BUF, never blocks
    finally:
        os.close(write_fd)
    return read_fd


def inherited_env() -> dict[str, str]:
    """The gateway's environment minus its secrets, as the base of a worker's (``gowa
    serve`` has dropped them already; an app created in-process may still hold them)."""
    return {name: value for name, value in os.environ.items() if name not in SECRET_ENV}


def runtime_env(settings: Settings | None, sandbox: p.SandboxConfig | None) -> dict[str, str]:
    """Environment the Go runtime in a worker must see, so it goes in at ``exec`` time.

    A Go c-shared library reads the environment block that follows ``argv`` (the one the
    process was exec'd with), not later ``putenv`` calls that add a variable; so these are
    set in the zygote's (or the plain worker's) exec environment. A GO* value already set
    in the gateway's environment wins.
    """
    settings = settings if settings is not None else Settings()
    values = {
        # One Go scheduler thread is plenty for one session and keeps idle workers smaller
        # than Go's default of one per core (docs/benchmarks.md, "Go runtime tuning").
        "GOMAXPROCS": "1",
    }
    if settings.worker_gogc:
        values["GOGC"] = str(settings.worker_gogc)
    if settings.worker_gomemlimit:
        values["GOMEMLIMIT"] = settings.worker_gomemlimit
    env = {name: value for name, value in values.items() if name not in os.environ}
    if settings.ksm != "off":
        env[p.KSM_ENV] = "1"
    if settings.worker_timer_slack_ms > 0:
        env[p.TIMER_SLACK_ENV] = str(round(settings.worker_timer_slack_ms * 1_000_000))
    if sandbox is not None:
        ca_file = os.path.abspath(sandbox.ca_file)
        env["SSL_CERT_FILE"] = ca_file
        # Without SSL_CERT_DIR, Go also parses every certificate in /etc/ssl/certs (~150)
        # in each worker, a large part of its start (docs/benchmarks.md, "Start-up"). A
        # sandbox worker reaches nothing but the sandbox, so the CA's own folder (it holds
        # only ca.pem, see gateway/sandbox.py) is the whole trust store.
        env["SSL_CERT_DIR"] = os.path.dirname(ca_file)
    return env


# ------------------------------------------------------------ forked workers


class ForkedWorker:
    """A worker forked by the zygote, watched through its pidfd."""

    def __init__(self, pid: int, pidfd: int, loop: asyncio.AbstractEventLoop) -> None:
        self.pid = pid
        self._pidfd: int | None = pidfd
        self._loop = loop
        self._returncode: int | None = None
        self._done: asyncio.Future[int] = loop.create_future()
        self._exited = False
        self._orphaned = False
        loop.add_reader(pidfd, self._on_exit)

    @property
    def returncode(self) -> int | None:
        return self._returncode

    async def wait(self) -> int:
        return await asyncio.shield(self._done)

    def send_signal(self, sig: int) -> None:
        if self._returncode is not None or self._pidfd is None:
            raise ProcessLookupError(self.pid)
        signal.pidfd_send_signal(self._pidfd, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _on_exit(self) -> None:
        """The process is gone; the zygote's exit report (with the code) follows shortly."""
        self._exited = True
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
        if self._orphaned:
            self.finish(UNKNOWN_EXIT)
        else:
            self._loop.call_later(5.0, self.finish, UNKNOWN_EXIT)

    def __del__(self) -> None:
        # As asyncio's subprocess transport does: a worker nobody can watch any more dies.
        if self._returncode is None and self._pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
                os.close(self._pidfd)

    def orphan(self) -> None:
        """The zygote died: nobody will report this worker's exit code."""
        self._orphaned = True
        if self._exited:
            self.finish(UNKNOWN_EXIT)

    def finish(self, code: int) -> None:
        if self._returncode is not None:
            return
        self._returncode = code
        if self._pidfd is not None:
            if not self._exited:
                self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self._done.set_result(code)


class Zygote:
    """The gateway's handle on one zygote process."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.process: asyncio.subprocess.Process | None = None
        self._sock: socket.socket | None = None
        self._ready: asyncio.Future[int] = loop.create_future()
        self._pending: dict[int, asyncio.Future[ForkedWorker]] = {}
        self._children: dict[int, ForkedWorker] = {}
        self._next_req = 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, env: dict[str, str]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "workers.zygote",
                str(theirs.fileno()),
                str(os.getpid()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                env={**inherited_env(), **env},
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self.loop.add_reader(ours.fileno(), self._on_readable)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), ZYGOTE_READY_TIMEOUT)
        except (TimeoutError, ZygoteError):
            await self.close()
            raise ZygoteError("the zygote did not start; see the gateway log") from None
        log.info("zygote ready, pid %d", self.process.pid)

    async def spawn(self, env: dict[str, str], cwd: str, log_fd: int, keys_fd: int) -> ForkedWorker:
        if self._sock is None or not self.alive:
            raise ZygoteError("the zygote is not running")
        self._next_req += 1
        req = self._next_req
        future: asyncio.Future[ForkedWorker] = self.loop.create_future()
        self._pending[req] = future
        data = p.encode_zygote(p.ZygoteSpawn(req=req, env=env, cwd=cwd))
        try:
            while True:
                try:
                    socket.send_fds(self._sock, [data], [log_fd, keys_fd])
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.005)
            # Not wait_for: on 3.11 it returns the result when a cancellation meets the
            # reply, the caller's stop() then waited for a worker it never saw end.
            async with asyncio.timeout(10.0):
                return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                # Forked, but nobody will manage it: it must not live on unwatched.
                with contextlib.suppress(ProcessLookupError):
                    future.result().kill()
            raise
        except (OSError, TimeoutError) as exc:
            raise ZygoteError(f"zygote spawn failed: {exc}") from exc
        finally:
            self._pending.pop(req, None)

    def _on_readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self._sock, MAX_PACKET, 4)
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            if not data:
                self._gone()
                return
            self._handle(p.decode_zygote_report(data), fds)

    def _handle(self, message: p.ZygoteReport, fds: list[int]) -> None:
        if isinstance(message, p.ZygoteReady) and not self._ready.done():
            self._ready.set_result(message.pid)
        elif isinstance(message, p.ZygoteSpawned) and fds:
            child = ForkedWorker(message.pid, fds[0], self.loop)
            self._children[child.pid] = child
            future = self._pending.get(message.req)
            if future is not None and not future.done():
                future.set_result(child)
            else:  # the spawn request gave up; do not leave an unmanaged worker behind
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
            return
        elif isinstance(message, p.ZygoteFailed):
            future = self._pending.get(message.req)
            if future is not None and not future.done():
                future.set_exception(ZygoteError(message.error))
        elif isinstance(message, p.ZygoteExit):
            ended = self._children.pop(message.pid, None)
            if ended is not None:
                ended.finish(message.code)
        for fd in fds:
            os.close(fd)

    def _gone(self) -> None:
        """The socket closed: the zygote exited (or is exiting)."""
        if self._sock is not None:
            self.loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if not self._ready.done():
            self._ready.set_exception(ZygoteError("the zygote exited during start-up"))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ZygoteError("the zygote exited"))
        for child in self._children.values():
            child.orphan()
        self._children.clear()

    def abandon(self) -> None:
        """Drop a zygote left over from an event loop that has ended, with its workers."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for child in self._children.values():
            with contextlib.suppress(ProcessLookupError, OSError):
                child.kill()
        self._children.clear()

    async def close(self) -> None:
        """Closing the socket ends the zygote; the workers it forked are not touched."""
        if self._sock is not None:
            self._gone()
        if self.process is not None and self.process.returncode is None:
            try:
                await asyncio.wait_for(self.process.wait(), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()


class Launcher:
    """Starts workers in the configured mode and keeps the zygote alive."""

    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.sandbox: p.SandboxConfig | None = None
        self._zygote: Zygote | None = None
        self._starting: asyncio.Task[Zygote] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def mode(self) -> str:
        return self.settings.worker_mode if self.settings is not None else "zygote"

    @property
    def zygote_pid(self) -> int | None:
        zygote = self._zygote
        if zygote is None or zygote.process is None or not zygote.alive:
            return None
        return zygote.process.pid

    def configure(self, settings: Settings, sandbox: p.SandboxConfig | None) -> None:
        self.settings = settings
        self.sandbox = sandbox

    async def start(self) -> None:
        """Start the zygote now (in zygote mode) so the first session does not wait for it."""
        self._closing = False
        if self.mode == "zygote":
            with contextlib.suppress(ZygoteError):
                await self._get_zygote()

    async def close(self) -> None:
        self._closing = True
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        zygote, self._zygote = self._zygote, None
        if zygote is not None:
            await zygote.close()

    async def spawn(self, config: p.WorkerConfig, keys: p.WorkerKeys) -> WorkerProcess:
        env = {p.CONFIG_ENV: p.encode_config(config)}
        log_fd = _open_log(config)
        try:
            if self.mode == "zygote":
                keys_fd = _keys_pipe(keys)
                try:
                    zygote = await self._get_zygote()
                    return await zygote.spawn(env, config.session_dir, log_fd, keys_fd)
                except ZygoteError as exc:
                    log.error("[%s] %s; starting a plain subprocess", config.session_id, exc)
                finally:
                    os.close(keys_fd)
            keys_fd = _keys_pipe(keys)
            try:
                return await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "workers",
                    env={
                        **inherited_env(),
                        **runtime_env(self.settings, self.sandbox),
                        **env,
                        p.KEYS_FD_ENV: str(keys_fd),
                    },
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log_fd,
                    stderr=log_fd,
                    cwd=config.session_dir,
                    pass_fds=(keys_fd,),
                )
            finally:
                os.close(keys_fd)
        finally:
            os.close(log_fd)

    async def _get_zygote(self) -> Zygote:
        loop = asyncio.get_running_loop()
        zygote = self._zygote
        if zygote is not None and zygote.alive and zygote.loop is loop:
            return zygote
        if self._starting is None or self._starting.get_loop() is not loop:
            self._starting = loop.create_task(self._start_zygote(loop))
        task = self._starting
        try:
            return await asyncio.shield(task)
        finally:
            if task.done() and self._starting is task:
                self._starting = None

    async def _start_zygote(self, loop: asyncio.AbstractEventLoop) -> Zygote:
        old, self._zygote = self._zygote, None
        if old is not None:
            if old.loop is loop:
                await old.close()
            else:  # left over from an event loop that has ended (tests)
                old.abandon()
        zygote = Zygote(loop)
        await zygote.start(runtime_env(self.settings, self.sandbox))
        self._zygote = zygote
        self._closing = False
        if self._watch is None or self._watch.done() or self._watch.get_loop() is not loop:
            self._watch = loop.create_task(self._watch_zygote(), name="zygote-watch")
        return zygote

    async def _watch_zygote(self) -> None:
        """Restart the zygote when it dies; running workers are not affected."""
        failures = 0
        while not self._closing:
            zygote = self._zygote
            if zygote is None or zygote.process is None:
                return
            code = await zygote.process.wait()
            if self._closing or self._zygote is not zygote:
                return
            log.error("zygote (pid %d) exited with %s; restarting it", zygote.process.pid, code)
            await zygote.close()
            self._zygote = None
            while not self._closing:
                await asyncio.sleep(min(30.0, 0.2 * 2**failures))
                try:
                    await self._get_zygote()
                    break
                except ZygoteError:
                    failures += 1


launcher = Launcher()


def configure(settings: Settings, sandbox: p.SandboxConfig | None = None) -> None:
    """Use these settings for every later :func:`spawn` (called by the supervisor)."""
    launcher.configure(settings, sandbox)


async def spawn(config: p.WorkerConfig, keys: p.WorkerKeys) -> WorkerProcess:
    """Start the worker of one session, with its output in ``<session dir>/worker.log``
    and ``keys`` (its credentials on the gateway's sockets) in a pipe only it gets."""
    return await launcher.spawn(config, keys)


async def terminate(process: WorkerProcess, grace: float) -> int:
    """SIGTERM, wait ``grace`` s, then SIGKILL; returns the exit code."""
    if process.returncode is not None:
        return process.returncode
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
        # A stopped (SIGSTOP) process only acts on SIGTERM once it runs again.
        process.send_signal(signal.SIGCONT)
    try:
        async with asyncio.timeout(grace):
            return await process.wait()
    except TimeoutError:
        return await kill(process)


async def kill(process: WorkerProcess) -> int:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    return await process.wait()
