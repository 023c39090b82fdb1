"""Starts, watches, restarts and measures the worker processes (one per session)."""

from gowa_py.supervisor.supervisor import SessionExists, SessionMissing, Supervisor

__all__ = ["SessionExists", "SessionMissing", "Supervisor"]
