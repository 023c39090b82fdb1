"""Opt this process (and every process it forks) in to kernel same-page merging.

Why, and what it saves: ``gowa_py/supervisor/ksm.py``. ``PR_SET_MEMORY_MERGE`` (Linux
6.4+) marks all of the process's private memory, present and future, as mergeable and is
inherited across ``fork``, so the zygote calls it once for itself and all its workers.
"""

from __future__ import annotations

import logging
import os

from gowa_py import protocol as p
from workers.system.prctl import prctl

log = logging.getLogger("gowa.worker")

PR_SET_MEMORY_MERGE = 67


def opt_in() -> bool:
    """Ask the kernel to merge our pages if the gateway wants it; True when it will."""
    if os.environ.get(p.KSM_ENV) != "1":
        return False
    try:
        prctl(PR_SET_MEMORY_MERGE, 1)
    except OSError as exc:
        log.warning("no same-page merging for this worker: %s", exc.strerror)
        return False
    return True
