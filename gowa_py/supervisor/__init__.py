"""Starts, watches, restarts and measures the worker processes (one per session)."""

from gowa_py.supervisor.supervisor import (
    AlreadyLoggedIn,
    NoQrCode,
    PairingLimit,
    SessionBusy,
    SessionExists,
    SessionLimit,
    SessionMissing,
    Supervisor,
    WorkerInfo,
)

__all__ = [
    "AlreadyLoggedIn",
    "NoQrCode",
    "PairingLimit",
    "SessionBusy",
    "SessionExists",
    "SessionLimit",
    "SessionMissing",
    "Supervisor",
    "WorkerInfo",
]
