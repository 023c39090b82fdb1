"""Starts, watches, restarts and measures the worker processes (one per session)."""

from gowa_py.supervisor.errors import (
    AlreadyLoggedIn,
    NoQrCode,
    PairingLimit,
    SessionBusy,
    SessionExists,
    SessionLimit,
    SessionMissing,
)
from gowa_py.supervisor.runner import WorkerInfo
from gowa_py.supervisor.supervisor import Supervisor

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
