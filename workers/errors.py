"""What a worker answers a command it cannot carry out with (no neonize needed to import)."""

from __future__ import annotations

from gowa_py import protocol as p
from gowa_py.errors import GowaError


class SessionError(GowaError):
    """A command that cannot be carried out; the worker replies with its code and message."""

    def __init__(self, code: p.ErrorCode, message: str) -> None:
        super().__init__(message, code=code)
