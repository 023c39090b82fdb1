"""Starts, watches, restarts and measures the worker processes (one per session)."""

from gowa_py.supervisor.supervisor import (
    SessionBusy,
    SessionExists,
    SessionLimit,
    SessionMissing,
    Supervisor,
)

__all__ = ["SessionBusy", "SessionExists", "SessionLimit", "SessionMissing", "Supervisor"]
