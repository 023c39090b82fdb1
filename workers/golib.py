"""neonize's Go library, loaded after the fork: the preload before it, the load after it.

The Go runtime in neonize's shared library does not survive ``fork``, so the zygote's
preload must import neonize without loading it. ``neonize._binder`` loads the library in
one module-level block guarded by ``if not os.environ.get("SPHINX")`` (for neonize's docs
build): :func:`preload` imports the module with SPHINX set, keeps that block compiled, leaves
a placeholder (neonize's own) in ``gocode``, and imports all of ``neonize``,
``neonize.client`` and the worker. A child runs the block (:func:`load_go_library`) and
swaps the real library in for the placeholder. Preloading ``neonize.client`` itself rather
than only its imports saves copy-on-write in every worker (docs/benchmarks.md, "Memory
per connected idle session"), because running that module in each child touches
thousands of shared objects. A worker started without the zygote runs both steps itself.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import io
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workers.system import confine

LIBRARY_PREFIX = "neonize-"
#: What a worker imports (the rest follows from these), lazily imported modules included:
#: a module imported after the fork is compiled and kept in every worker's own memory.
PRELOAD = (
    "neonize",
    "neonize.client",
    "google.protobuf.json_format",
    "workers.chatstore",
    "workers.operations",
    "workers.operations.automations",
    "workers.operations.events",
    "workers.operations.history",
    "workers.operations.updates",
    "workers.session",
    "workers.worker",
    "workers.run",
    "workers.eventlog",
    "workers.payloads",
    "gowa_py.sim.redirect",
    "gowa_py.protocol",
    "gowa_py.ipc",
    "gowa_py.backoff",
    # A worker of a gateway on PostgreSQL: imported here, while the Python installation is
    # in reach (a confined worker may not read it), though SQLite workers never use it.
    "gowa_py.storage.postgres",
    "gowa_py.storage.pg_schema",
)


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
    blocks: list[ast.stmt] = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.If)
        and "SPHINX" in (ast.get_source_segment(source, node.test) or "")
    ]
    if len(blocks) != 1:
        raise RuntimeError("unsupported neonize build: cannot find the library-loading block")
    previous = os.environ.get("SPHINX")
    os.environ["SPHINX"] = "1"
    try:
        binder: Any = importlib.import_module("neonize._binder")
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
    module: Any = sys.modules.get("neonize.utils.log")
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
