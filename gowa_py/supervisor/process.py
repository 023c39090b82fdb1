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
import sys
from pathlib import Path
from typing import Protocol

from gowa_py import protocol as p
from gowa_py.config import Settings
from gowa_py.supervisor.workerenv import inherited_env, runtime_env
from gowa_py.supervisor.zygote_client import Zygote, ZygoteError

log = logging.getLogger("gowa.supervisor")


class WorkerProcess(Protocol):
    pid: int

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


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
