"""The common base of gowa-py's own exceptions.

Every failure that a caller may be told about is a :class:`GowaError` carrying an
:class:`~gowa_py.protocol.ErrorCode`, its HTTP status and a message, so the gateway answers
all of them in one place (``gateway.errors.error_middleware``) whichever layer raised them.
Exceptions without a code of their own (a damaged store, a bad configuration) keep
``INTERNAL_ERROR``: a request that runs into one is a gateway fault, logged with a reference.
"""

from __future__ import annotations

from typing import Any

from gowa_py.protocol import ErrorCode


class GowaError(Exception):
    """Base of gowa-py's exceptions; ``code`` and ``status`` say how the gateway answers."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        status: int | None = None,
        results: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            if not isinstance(code, ErrorCode):
                raise TypeError(f"an error code is an ErrorCode, not {code!r}")
            self.code = code
        self.message = message
        self.status = status or self.code.status
        self.results = results
        #: Headers of the error response (``Retry-After`` for the ones worth retrying).
        self.headers = headers or {}
