"""Starts, watches, restarts and measures the worker processes (one per session)."""

from gowa_py.supervisor.supervisor import SessionExists, SessionLimit, SessionMissing, Supervisor

__all__ = ["SessionExists", "SessionLimit", "SessionMissing", "Supervisor"]
