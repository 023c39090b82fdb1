"""The zygote: a pre-loaded Python process that forks session workers.

Why a small zygote of our own rather than ``multiprocessing``'s forkserver:

* a worker needs, before anything else runs, its log file as stdout/stderr, its own
  environment (``GOWA_WORKER_CONFIG``, ``GOMAXPROCS``, ...) and its session directory as
  cwd; forkserver children instead run multiprocessing's bootstrap (a pickled Process,
  the resource tracker, its own fd shuffling) and keep none of that for us;
* the gateway must watch and signal workers that are not its children: the zygote hands
  it a pidfd per child (race-free against pid reuse) and reports exit codes over the same
  socket, which forkserver has no channel for;
* the Go runtime in neonize's shared library does not survive ``fork``: the zygote
  imports everything a worker needs without loading that library, and each child loads
  it after the fork (:mod:`workers.golib`). Go reads the environment block the process was
  exec'd with, so what Go must see (``GOMAXPROCS``, ``SSL_CERT_FILE`` of the sandbox) is in
  the zygote's own exec environment; per-worker variables only matter to Python.

Protocol, over one ``AF_UNIX``/``SOCK_SEQPACKET`` socket, one message per packet (the
``Zygote*`` structs of ``gowa_py.protocol``, as JSON):
gateway -> zygote ``ZygoteSpawn`` with the log fd and the read end of a pipe holding the
worker's keys attached (the zygote never reads the keys: the child finds the pipe through
``KEYS_FD_ENV``, and the zygote closes its copy once it has forked);
zygote -> gateway ``ZygoteReady``, ``ZygoteSpawned`` with the child's pidfd attached,
``ZygoteFailed`` and ``ZygoteExit``. The zygote dies with the gateway
(``PR_SET_PDEATHSIG``) and when the socket closes. Its children do not die with it: a
zygote crash leaves running sessions alone, and each worker watches the gateway itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import selectors
import signal
import socket
import sys
import traceback

import msgspec

from gowa_py import protocol as p
from workers import golib
from workers.system import pagemerge, timerslack
from workers.system.prctl import prctl

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
MAX_PACKET = 256 * 1024


def _close_inherited_fds(keep: int) -> None:
    """Close every fd but stdio and ``keep``: the zygote is spawned through libuv, whose
    dups of the gateway's stdio (its log) survive the exec, and would reach every worker."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd != keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _set_name(name: bytes) -> None:
    """The process name ``ps``/``top`` show (its command line stays ``-m workers.zygote``)."""
    with contextlib.suppress(OSError, AttributeError):
        prctl(PR_SET_NAME, ctypes.c_char_p(name))


def _send(sock: socket.socket, message: p.ZygoteReport, fds: list[int] | None = None) -> None:
    data = p.encode_zygote(message)
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


def _child(
    sock: socket.socket, wake: tuple[int, int], request: p.ZygoteSpawn, log_fd: int, keys_fd: int
) -> None:
    """Runs in the forked child; never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _set_name(b"gowa-worker")
        sock.close()
        for fd in wake:
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(devnull)
        os.close(log_fd)
        os.chdir(request.cwd)
        os.environ.update(request.env)
        os.environ[p.KEYS_FD_ENV] = str(keys_fd)
        from workers.run import main

        main(forked=True)
        code = 0
    except SystemExit as exc:
        if isinstance(exc.code, int):
            code = exc.code
        elif exc.code is not None:
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _fork(
    sock: socket.socket, wake: tuple[int, int], request: p.ZygoteSpawn, fds: list[int]
) -> None:
    """Fork a worker with ``fds``: its log and the pipe holding its keys, which the zygote
    passes on unread and closes here, so its later children never inherit them."""
    log_fd, keys_fd = fds
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
    except OSError as exc:
        os.close(log_fd)
        os.close(keys_fd)
        _send(sock, p.ZygoteFailed(req=request.req, error=f"fork failed: {exc}"))
        return
    if pid == 0:
        _child(sock, wake, request, log_fd, keys_fd)
    os.close(log_fd)
    os.close(keys_fd)
    # Opened before the child can be reaped, so the pidfd cannot name another process.
    pidfd = os.pidfd_open(pid)
    try:
        _send(sock, p.ZygoteSpawned(req=request.req, pid=pid), [pidfd])
    finally:
        os.close(pidfd)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, p.ZygoteExit(pid=pid, code=os.waitstatus_to_exitcode(status)))


def serve(sock: socket.socket) -> None:
    """Fork a worker per request until the gateway closes the socket."""
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sock.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    _send(sock, p.ZygoteReady(pid=os.getpid()))
    while True:
        for key, _ in selector.select():
            if key.fd == wake_r:
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake_r, 512):
                        pass
                _reap(sock)
                continue
            while True:
                try:
                    data, fds, _flags, _addr = socket.recv_fds(sock, MAX_PACKET, 4)
                except BlockingIOError:
                    break
                if not data:
                    return
                try:
                    request = p.decode_zygote_request(data)
                except msgspec.DecodeError:
                    request = None
                if request is None or len(fds) != 2:
                    for fd in fds:
                        os.close(fd)
                    continue
                sock.setblocking(True)
                _fork(sock, (wake_r, wake_w), request, fds)
                sock.setblocking(False)


def main() -> None:
    """``python -m workers.zygote <socket fd> <gateway pid>``."""
    fd, gateway_pid = int(sys.argv[1]), int(sys.argv[2])
    _close_inherited_fds(keep=fd)
    with contextlib.suppress(OSError, AttributeError):
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != gateway_pid:
        sys.exit("gateway exited before the zygote started")
    # Ctrl-C in a terminal reaches the whole process group; the gateway ends us itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_name(b"gowa-zygote")
    sock = socket.socket(fileno=fd)
    pagemerge.opt_in()
    timerslack.apply()
    golib.preload()
    gc.collect()
    # Objects from the preload move to a generation the collector never scans, so a
    # child's collections do not write to (and un-share) those pages.
    gc.freeze()
    serve(sock)


if __name__ == "__main__":
    main()
