"""The gateway's side of the zygote (:mod:`workers.zygote`): starting it, asking it to
fork a worker, and following the workers it forked through their pidfds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys

from gowa_py import protocol as p
from gowa_py.errors import GowaError
from gowa_py.supervisor.workerenv import inherited_env

log = logging.getLogger("gowa.supervisor")

UNKNOWN_EXIT = 255
ZYGOTE_READY_TIMEOUT = 30.0
MAX_PACKET = 256 * 1024


class ZygoteError(GowaError, RuntimeError):
    """The zygote is not running or could not fork."""


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
