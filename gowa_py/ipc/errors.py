"""What a command to a worker can fail with."""

from __future__ import annotations

from gowa_py import protocol as p
from gowa_py.errors import GowaError


class WorkerUnavailable(GowaError):
    """The worker is not connected or did not answer before the deadline."""

    code = p.ErrorCode.SESSION_UNAVAILABLE


class WorkerError(GowaError):
    """The worker answered with an error; its code is the one the worker sent."""

    def __init__(self, code: p.ErrorCode, message: str) -> None:
        super().__init__(message, code=code)
