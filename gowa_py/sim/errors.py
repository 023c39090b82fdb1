"""The one exception type the sandbox API turns into ``{"code", "message"}`` responses."""

from __future__ import annotations


class SimError(Exception):
    """A request the sandbox refuses or cannot complete; ``code`` is upper-case."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
