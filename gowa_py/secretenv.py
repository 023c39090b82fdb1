"""Keep the gateway's secrets out of its environment once the settings are read.

The credentials (``GOWA_API_KEY``, ``GOWA_BASIC_AUTH``, ...) are read into the settings
at start and are needed nowhere else. Left in the environment they reach every child
process, and ``/proc/<pid>/environ`` shows them to any process that may read that file.
Removing them from ``os.environ`` is not enough: that file shows the environment block
the process was exec'd with, which no ``unsetenv`` touches, so their values are
overwritten in that block too. :func:`undumpable` then closes ``/proc/<pid>/environ``,
``mem``, ``maps`` and ptrace to every process without ``CAP_SYS_PTRACE``, same uid
included, and keeps the secrets out of core dumps.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable

PR_SET_DUMPABLE = 4
# Fields 50 and 51 of /proc/<pid>/stat (proc(5)), counted from the state (field 3).
_ENV_START, _ENV_END = 50 - 3, 51 - 3


def _environ_block() -> tuple[int, int]:
    """Start and end address of this process's exec-time environment block."""
    with open("/proc/self/stat", "rb") as handle:
        stat = handle.read()
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[_ENV_START]), int(fields[_ENV_END])


def forget(names: Iterable[str]) -> list[str]:
    """Remove ``names`` from the environment and wipe their values from the exec-time
    block; returns the names that were set."""
    wanted = {name.encode() for name in names}
    start, end = _environ_block()
    offset = 0
    for entry in ctypes.string_at(start, end - start).split(b"\0"):
        name, sep, value = entry.partition(b"=")
        if sep and name in wanted and value:
            ctypes.memset(start + offset + len(name) + 1, 0, len(value))
        offset += len(entry) + 1
    return sorted(name.decode() for name in wanted if os.environ.pop(name.decode(), None))


def undumpable() -> None:
    """``PR_SET_DUMPABLE`` 0 for this process (see the module docstring)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"PR_SET_DUMPABLE: {os.strerror(errno)}")
