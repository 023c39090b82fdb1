"""``prctl(2)`` with one argument, for the process settings a worker or the zygote makes."""

from __future__ import annotations

import ctypes
import os


def prctl(option: int, value: int | ctypes.c_char_p) -> None:
    """Set ``option`` to ``value`` for the calling thread or process; OSError on failure."""
    if ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
