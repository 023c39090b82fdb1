"""Starts, watches, restarts and measures the worker processes (one per session)."""

from gowa_py.supervisor.supervisor import (
    PairingLimit,
    SessionBusy,
    SessionExists,
    SessionLimit,
    SessionMissing,
    Supervisor,
    WorkerInfo,
)

__all__ = [
    "PairingLimit",
    "SessionBusy",
    "SessionExists",
    "SessionLimit",
    "SessionMissing",
    "Supervisor",
    "WorkerInfo",
]
