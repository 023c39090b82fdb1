"""The zygote: a pre-loaded Python process that forks session workers (DESIGN.md §7).

Why a small zygote of our own rather than ``multiprocessing``'s forkserver:

* a worker needs, before anything else runs, its log file as stdout/stderr, its own
  environment (``GOWA_WORKER_CONFIG``, ``GOMAXPROCS``, ...) and its session directory as
  cwd; forkserver children instead run multiprocessing's bootstrap (a pickled Process,
  the resource tracker, its own fd shuffling) and keep none of that for us;
* the gateway must watch and signal workers that are not its children: the zygote hands
  it a pidfd per child (race-free against pid reuse) and reports exit codes over the same
  socket, which forkserver has no channel for;
* the Go runtime in neonize's shared library does not survive ``fork``, so the preload
  must import neonize's pure-Python modules without running ``neonize/__init__.py``
  (which loads the library through ``neonize.client`` -> ``neonize._binder``). We
  register the ``neonize`` package object without executing it, import what
  ``neonize.client``, ``neonize._binder``, ``neonize/__init__`` and ``workers.session``
  import, and each child executes the package ``__init__`` (and so loads the library)
  after the fork. Go reads the environment block the process was exec'd with, so what
  Go must see (``GOMAXPROCS``, ``SSL_CERT_FILE`` of the sandbox) is in the zygote's own
  exec environment; per-worker variables only matter to Python.

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
import json
import logging
import os
import selectors
import signal
import socket
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
MAX_PACKET = 256 * 1024
LIBRARY_PREFIX = "neonize-"
#: Files whose top-level imports are preloaded (not the modules themselves, which would
#: load the Go library).
IMPORT_SOURCES = ("neonize/__init__.py", "neonize/_binder.py", "neonize/client.py")
WORKER_MODULES = (
    "workers.worker",
    "workers.eventlog",
    "workers.payloads",
    "workers.sandbox",
    "gowa_py.protocol",
    "gowa_py.ipc",
    "gowa_py.backoff",
)
NOT_BEFORE_FORK = frozenset({"neonize", "neonize._binder", "neonize.client"})


# ------------------------------------------------------------------ preload


def _top_level_imports(path: Path, package: str) -> list[str]:
    """Absolute names of the modules (and imported submodules) a file imports at top level."""
    tree = ast.parse(path.read_text(), str(path))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names)
    return names


def _import_if_module(name: str) -> None:
    """Import ``name`` when it names a module; ``from x import attr`` names are skipped."""
    if name in sys.modules:
        return
    try:
        if importlib.util.find_spec(name) is None:
            return
    except (ImportError, ValueError):
        return  # "x.attr" where x is a module and attr is not a submodule
    importlib.import_module(name)


def _defer_neonize() -> Path:
    """Register the ``neonize`` package without running its ``__init__``."""
    spec = importlib.util.find_spec("neonize")
    if spec is None or spec.origin is None:
        raise ImportError("neonize is not installed")
    package = importlib.util.module_from_spec(spec)
    package.__gowa_deferred__ = True  # type: ignore[attr-defined]
    sys.modules["neonize"] = package
    return Path(spec.origin).parent


def go_library_loaded() -> bool:
    with open("/proc/self/maps") as maps:
        return any(LIBRARY_PREFIX in line and ".so" in line for line in maps)


def preload() -> list[str]:
    """Import everything a worker needs except the Go library; returns the module names."""
    root = _defer_neonize()
    wanted: list[str] = []
    for relative in IMPORT_SOURCES:
        wanted += _top_level_imports(root.parent / relative, "neonize")
    session_file = Path(__file__).with_name("session.py")
    wanted += _top_level_imports(session_file, "workers")
    wanted += WORKER_MODULES
    root_logger = logging.getLogger()
    saved = (root_logger.level, list(root_logger.handlers))
    for name in dict.fromkeys(wanted):
        if name.split(".")[0] == "neonize" and _is_blocked(name):
            continue
        _import_if_module(name)
    # neonize.utils.log calls logging.basicConfig at import; the worker configures logging
    # itself, as it would have without a preload.
    root_logger.setLevel(saved[0])
    root_logger.handlers[:] = saved[1]
    _stop_log_thread()
    if go_library_loaded():
        raise RuntimeError("the preload loaded neonize's Go library; it must load after fork")
    if threading.active_count() != 1:
        raise RuntimeError("the preload started threads; forking would lose them")
    return sorted(sys.modules)


def _is_blocked(name: str) -> bool:
    return any(name == bad or name.startswith(bad + ".") for bad in NOT_BEFORE_FORK - {"neonize"})


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


def complete_neonize() -> None:
    """In a child: run the deferred ``neonize/__init__`` (this loads the Go library)."""
    package = sys.modules.get("neonize")
    if package is not None and getattr(package, "__gowa_deferred__", False):
        del package.__gowa_deferred__
        assert package.__spec__ is not None and package.__spec__.loader is not None
        package.__spec__.loader.exec_module(package)
    _start_log_thread()


# -------------------------------------------------------------------- server


def _set_name(name: bytes) -> None:
    """The process name ``ps``/``top`` show (its command line stays ``-m workers.zygote``)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)


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
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != gateway_pid:
        sys.exit("gateway exited before the zygote started")
    # Ctrl-C in a terminal reaches the whole process group; the gateway ends us itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_name(b"gowa-zygote")
    sock = socket.socket(fileno=fd)
    preload()
    gc.collect()
    # Objects from the preload move to a generation the collector never scans, so a
    # child's collections do not write to (and un-share) those pages.
    gc.freeze()
    serve(sock)


if __name__ == "__main__":
    main()
