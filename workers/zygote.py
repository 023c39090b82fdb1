"""The zygote: a pre-loaded Python process that forks session workers.

Why a small zygote of our own rather than ``multiprocessing``'s forkserver:

* a worker needs, before anything else runs, its log file as stdout/stderr, its own
  environment (``GOWA_WORKER_CONFIG``, ``GOMAXPROCS``, ...) and its session directory as
  cwd; forkserver children instead run multiprocessing's bootstrap (a pickled Process,
  the resource tracker, its own fd shuffling) and keep none of that for us;
* the gateway must watch and signal workers that are not its children: the zygote hands
  it a pidfd per child (race-free against pid reuse) and reports exit codes over the same
  socket, which forkserver has no channel for;
* the Go runtime in neonize's shared library does not survive ``fork``, so the preload
  must import neonize without loading it. ``neonize._binder`` loads the library in one
  module-level block guarded by ``if not os.environ.get("SPHINX")`` (for neonize's docs
  build): the zygote imports the module with SPHINX set, keeps that block compiled, puts a
  placeholder (neonize's own) in ``gocode``, and imports all of ``neonize``, ``neonize.client`` and
  the worker. A child runs the block (:func:`load_go_library`) and swaps the real library
  in for the placeholder. Preloading ``neonize.client`` itself rather than only its
  imports saves copy-on-write in every worker (docs/benchmarks.md, "Memory per connected
  idle session"), because running that module in each child touches thousands of
  shared objects. Go reads the environment block the process was exec'd with, so what Go
  must see (``GOMAXPROCS``, ``SSL_CERT_FILE`` of the sandbox) is in the zygote's own exec
  environment; per-worker variables only matter to Python.

Protocol, over one ``AF_UNIX``/``SOCK_SEQPACKET`` socket (one JSON object per packet):
gateway -> zygote ``{"op": "spawn", "req", "env", "cwd"}`` with the log fd attached;
zygote -> gateway ``ready``, ``spawned {req, pid}`` with the child's pidfd attached,
``failed {req, error}`` and ``exit {pid, code}``. The zygote dies with the gateway
(``PR_SET_PDEATHSIG``) and when the socket closes. Its children do not die with it: a
zygote crash leaves running sessions alone, and each worker watches the gateway itself.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import gc
import importlib
import importlib.util
import io
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workers import confine, pagemerge, timerslack
from workers.prctl import prctl

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
MAX_PACKET = 256 * 1024
LIBRARY_PREFIX = "neonize-"
#: What a worker imports (the rest follows from these), lazily imported modules included:
#: a module imported after the fork is compiled and kept in every worker's own memory.
PRELOAD = (
    "neonize",
    "neonize.client",
    "google.protobuf.json_format",
    "workers.chatstore",
    "workers.operations",
    "workers.operations.events",
    "workers.session",
    "workers.worker",
    "workers.eventlog",
    "workers.payloads",
    "workers.sandbox",
    "gowa_py.protocol",
    "gowa_py.ipc",
    "gowa_py.backoff",
)


# ------------------------------------------------------------------ preload


#: ``neonize._binder.gocode`` as imported without the library (neonize's own placeholder).
_placeholder: Any = None
_load_code: Any = None
#: The namespaces holding the placeholder, which a child points at the real library.
_holders: list[dict[str, Any]] = []


def _import_binder_without_library() -> None:
    """Import ``neonize._binder`` minus the block that loads the library, kept for later.

    The module guards that block with ``if not os.environ.get("SPHINX")`` (for its docs
    build); we import it with SPHINX set and keep the block compiled, to run after fork.
    """
    global _load_code, _placeholder
    # find_spec("neonize._binder") would import the package, and so the library.
    package = importlib.util.find_spec("neonize")
    if package is None or package.origin is None:
        raise ImportError("neonize is not installed")
    path = Path(package.origin).with_name("_binder.py")
    source = path.read_text()
    blocks = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.If) and "SPHINX" in ast.get_source_segment(source, node.test)
    ]
    if len(blocks) != 1:
        raise RuntimeError("unsupported neonize build: cannot find the library-loading block")
    previous = os.environ.get("SPHINX")
    os.environ["SPHINX"] = "1"
    try:
        binder = importlib.import_module("neonize._binder")
    finally:
        if previous is None:
            del os.environ["SPHINX"]
        else:
            os.environ["SPHINX"] = previous
    _placeholder = binder.gocode
    _load_code = compile(ast.Module(body=blocks, type_ignores=[]), str(path), "exec")
    binder.generated_name = _cached_library_name(binder.generated_name)


def _cached_library_name(generated_name: Any) -> Any:
    """neonize's ``generated_name``, asked once here rather than twice in every child.

    It runs ``uname -a`` in a subprocess on each call (to tell Android from Linux), a fork
    of the whole process in every worker's start (docs/benchmarks.md, "Start-up").
    """
    with _popen_reaped():
        host_library: str = generated_name()

    def cached(os_name: str = "", arch_name: str = "") -> str:
        return generated_name(os_name, arch_name) if os_name or arch_name else host_library

    return cached


@contextlib.contextmanager
def _popen_reaped() -> Iterator[None]:
    """``os.popen`` that waits for its command while the block runs.

    neonize reads ``os.popen("uname -a")`` without closing it: the ``sh`` stays a zombie
    child of the zygote and its pipe an open fd that every worker inherited.
    """

    def popen(cmd: str, mode: str = "r", buffering: int = -1) -> io.StringIO:
        done = subprocess.run(cmd, shell=True, capture_output=True, text=True, check=False)
        return io.StringIO(done.stdout)

    original, os.popen = os.popen, popen  # type: ignore[assignment]
    try:
        yield
    finally:
        os.popen = original


def _close_inherited_fds(keep: int) -> None:
    """Close every fd but stdio and ``keep``: the zygote is spawned through libuv, whose
    dups of the gateway's stdio (its log) survive the exec, and would reach every worker."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd != keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def go_library_loaded() -> bool:
    with open("/proc/self/maps") as maps:
        return any(LIBRARY_PREFIX in line and ".so" in line for line in maps)


def preload() -> list[str]:
    """Import everything a worker imports, without loading the Go library.

    Returns the names of the loaded modules.
    """
    root_logger = logging.getLogger()
    saved = (root_logger.level, list(root_logger.handlers))
    _import_binder_without_library()
    for name in PRELOAD:
        importlib.import_module(name)
    # neonize.utils.log calls logging.basicConfig at import; the worker configures logging
    # itself, as it would have without a preload.
    root_logger.setLevel(saved[0])
    root_logger.handlers[:] = saved[1]
    _stop_log_thread()
    _holders[:] = [
        namespace
        for module in list(sys.modules.values())
        if isinstance(namespace := getattr(module, "__dict__", None), dict)
        and namespace.get("gocode") is _placeholder
    ]
    if go_library_loaded():
        raise RuntimeError("the preload loaded neonize's Go library; it must load after fork")
    if threading.active_count() != 1:
        raise RuntimeError("the preload started threads; forking would lose them")
    confine.python_paths()  # once here rather than in every worker
    return sorted(sys.modules)


def _stop_log_thread() -> None:
    """neonize.utils.log starts a log-forwarding thread at import; threads do not survive fork."""
    module = sys.modules.get("neonize.utils.log")
    if module is not None and module._thread.is_alive():
        module._log_queue.put(None)
        module._thread.join()


def _start_log_thread() -> None:
    """In a child: the thread :func:`_stop_log_thread` stopped, so whatsmeow's logs flow again."""
    module = sys.modules.get("neonize.utils.log")
    if module is not None and not module._thread.is_alive():
        module._thread = threading.Thread(target=module._worker, daemon=True)
        module._thread.start()


def load_go_library() -> None:
    """In a child: load neonize's Go library and hand it to the modules that imported it."""
    if _load_code is None:
        raise RuntimeError("load_go_library() is for children of a zygote that ran preload()")
    binder = sys.modules["neonize._binder"]
    exec(_load_code, binder.__dict__)
    for namespace in _holders:
        namespace["gocode"] = binder.gocode
    _start_log_thread()


# -------------------------------------------------------------------- server


def _set_name(name: bytes) -> None:
    """The process name ``ps``/``top`` show (its command line stays ``-m workers.zygote``)."""
    with contextlib.suppress(OSError, AttributeError):
        prctl(PR_SET_NAME, ctypes.c_char_p(name))


def _send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


def _child(
    sock: socket.socket, wake: tuple[int, int], request: dict[str, Any], log_fd: int
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
        os.chdir(request["cwd"])
        os.environ.update(request["env"])
        from workers.worker import main

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


def _fork(sock: socket.socket, wake: tuple[int, int], request: dict[str, Any], log_fd: int) -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
    except OSError as exc:
        os.close(log_fd)
        _send(sock, {"op": "failed", "req": request["req"], "error": f"fork failed: {exc}"})
        return
    if pid == 0:
        _child(sock, wake, request, log_fd)
    os.close(log_fd)
    # Opened before the child can be reaped, so the pidfd cannot name another process.
    pidfd = os.pidfd_open(pid)
    try:
        _send(sock, {"op": "spawned", "req": request["req"], "pid": pid}, [pidfd])
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
        _send(sock, {"op": "exit", "pid": pid, "code": os.waitstatus_to_exitcode(status)})


def serve(sock: socket.socket) -> None:
    """Fork a worker per request until the gateway closes the socket."""
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sock.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    _send(sock, {"op": "ready", "pid": os.getpid()})
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
                request = json.loads(data)
                if request.get("op") != "spawn" or len(fds) != 1:
                    for fd in fds:
                        os.close(fd)
                    continue
                sock.setblocking(True)
                _fork(sock, (wake_r, wake_w), request, fds[0])
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
    preload()
    gc.collect()
    # Objects from the preload move to a generation the collector never scans, so a
    # child's collections do not write to (and un-share) those pages.
    gc.freeze()
    serve(sock)


if __name__ == "__main__":
    # Run as the module ``workers.zygote`` (not ``__main__``): children look up the
    # preload's state there.
    importlib.import_module("workers.zygote").main()
