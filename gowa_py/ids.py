"""Session ids become directory and file names, so they are validated before any use."""

from __future__ import annotations

import re

from gowa_py.errors import GowaError
from gowa_py.protocol import ErrorCode

SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_SESSION_ID = re.compile(SESSION_ID_PATTERN)


class InvalidSessionId(GowaError, ValueError):
    """Raised for a session id that could escape the data directory or is otherwise unusable."""

    code = ErrorCode.INVALID_SESSION_ID


def is_valid_session_id(value: object) -> bool:
    """True when ``value`` is a string matching :data:`SESSION_ID_PATTERN` (no trailing newline)."""
    return isinstance(value, str) and _SESSION_ID.fullmatch(value) is not None


def check_session_id(value: object) -> str:
    """Return ``value`` unchanged, or raise :class:`InvalidSessionId` with a readable reason."""
    if not is_valid_session_id(value):
        raise InvalidSessionId(
            f"invalid session id {value!r}: it must match {SESSION_ID_PATTERN} "
            "(letters, digits, '_' and '-', at most 64 characters, not starting with '_' or '-')"
        )
    return value  # type: ignore[return-value]
