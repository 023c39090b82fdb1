"""Kernel same-page merging (KSM) for the workers: the largest single memory saving.

A forked worker writes to pages it shares with the zygote all the time without changing
what they hold for long: reference counts go up and down, CPython 3.11 specialises the
bytecode of every function it runs, a freed slot is reused. Each such write copies a
4 KiB page, and the copies are identical from worker to worker (same code, same objects,
same addresses after the same fork), as are the relocated data pages of neonize's Go
library, which every worker loads at the same address. ``ksmd`` merges identical pages
back into one copy-on-write page; it more than halves a connected worker's own pages
(USS; docs/benchmarks.md, "Memory per connected idle session").

The workers opt in themselves (``workers/system/pagemerge.py``, inherited through the zygote's
fork); KSM scans nothing else. ``ksmd`` itself is a host-wide switch: if it is stopped
and this process may start it (root), :func:`ensure_running` starts it with our scan
rate; one that already runs is left exactly as the host's administrator tuned it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import msgspec

log = logging.getLogger("gowa.ksm")

SYSFS = Path("/sys/kernel/mm/ksm")
COUNTERS = ("pages_shared", "pages_sharing", "full_scans", "general_profit")

State = Literal["off", "unavailable", "stopped", "running", "started"]


class KsmStatus(msgspec.Struct, frozen=True):
    """What :func:`ensure_running` found or did (shown at start-up and in /metrics)."""

    state: State
    detail: str = ""


def _read(root: Path, name: str) -> int | None:
    try:
        return int((root / name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def ensure_running(mode: str, pages_to_scan: int, root: Path = SYSFS) -> KsmStatus:
    """Make ``ksmd`` scan, if ``mode`` is ``"auto"`` and the host lets us.

    Returns ``stopped`` (with a hint) when it is off and cannot be started from here:
    the workers still opt in, and merging begins whenever an administrator runs
    ``echo 1 > /sys/kernel/mm/ksm/run``.
    """
    if mode == "off":
        return KsmStatus("off")
    run = _read(root, "run")
    if run is None:
        return KsmStatus("unavailable", f"{root} is missing: the kernel has no KSM")
    if run == 1:
        return KsmStatus("running", "left as configured on this host")
    try:
        (root / "pages_to_scan").write_text(str(pages_to_scan))
        (root / "run").write_text("1")
    except OSError as exc:
        return KsmStatus(
            "stopped",
            f"cannot start ksmd ({exc.strerror}); as root: echo 1 > {root / 'run'}",
        )
    return KsmStatus("started", f"started ksmd, scanning {pages_to_scan} pages per batch")


def counters(root: Path = SYSFS) -> dict[str, int]:
    """Host-wide KSM counters (pages are 4 KiB); empty without KSM."""
    values = {name: _read(root, name) for name in COUNTERS}
    return {name: value for name, value in values.items() if value is not None}


def running(root: Path = SYSFS) -> bool:
    """Whether ksmd is scanning (whoever started it)."""
    return _read(root, "run") == 1


def log_status(status: KsmStatus) -> None:
    if status.state in ("running", "started"):
        log.info("same-page merging (KSM) for workers: %s", status.detail)
    elif status.state != "off":
        log.warning(
            "same-page merging (KSM) is %s: each worker keeps ~15 MB more of its own (%s)",
            status.state,
            status.detail,
        )
