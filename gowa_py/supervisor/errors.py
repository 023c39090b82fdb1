"""What the supervisor refuses, each with its wire error code (answered as 4xx by the gateway)."""

from __future__ import annotations

from gowa_py import protocol as p
from gowa_py.errors import GowaError


class SessionExists(GowaError):
    code = p.ErrorCode.SESSION_EXISTS

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} already exists")
        self.session_id = session_id


class SessionMissing(GowaError):
    code = p.ErrorCode.SESSION_NOT_FOUND

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} does not exist")
        self.session_id = session_id


class SessionLimit(GowaError):
    """The gateway holds ``max_sessions`` sessions already."""

    code = p.ErrorCode.SESSION_LIMIT

    def __init__(self, limit: int, cluster: bool = False) -> None:
        holder = "the cluster" if cluster else "this gateway"
        whose = "its nodes' max_sessions together" if cluster else "its max_sessions"
        super().__init__(f"{holder} holds {limit} sessions, {whose}; delete one first")
        self.limit = limit


class SessionElsewhere(GowaError):
    """Another node of the cluster holds the session's lease: running it here too would
    connect its device twice."""

    code = p.ErrorCode.SESSION_ELSEWHERE

    def __init__(self, session_id: str, node: str) -> None:
        where = f"node {node!r}" if node else "another node"
        super().__init__(f"session {session_id!r} runs on {where} of the cluster")
        self.session_id = session_id
        self.node = node


class PairingLimit(GowaError):
    """``max_pairing`` sessions are pairing already."""

    code = p.ErrorCode.TOO_MANY_PAIRING

    def __init__(self, pairing: int, limit: int) -> None:
        super().__init__(
            f"{pairing} sessions are already waiting for a QR scan or pairing code "
            f"(max_pairing {limit}); try again shortly",
            headers={"Retry-After": "10"},
        )
        self.pairing = pairing
        self.limit = limit


class SessionBusy(GowaError):
    """Another lifecycle operation on the session did not finish in time."""

    code = p.ErrorCode.SESSION_BUSY

    def __init__(self, session_id: str, waited_s: float) -> None:
        super().__init__(
            f"session {session_id!r} is busy with other start/stop/restart/logout/reconnect "
            f"requests (waited {waited_s:g} s); try again",
            headers={"Retry-After": "1"},
        )
        self.session_id = session_id


class AlreadyLoggedIn(GowaError):
    """A QR login was asked of a session that is logged in."""

    code = p.ErrorCode.ALREADY_LOGGED_IN

    def __init__(self, session_id: str, jid: str) -> None:
        super().__init__(f"session {session_id!r} is already logged in as {jid}")
        self.session_id = session_id


class NoQrCode(GowaError):
    """The session showed no QR code within the wait (its state says why)."""

    code = p.ErrorCode.SESSION_UNAVAILABLE

    def __init__(
        self, session_id: str, waited: float, state: p.SessionState, error: str | None
    ) -> None:
        super().__init__(
            f"session {session_id!r} has no QR code after {waited:g} s "
            f"(status {state.value}{': ' + error if error else ''})"
        )
        self.session_id = session_id


class SessionExported(GowaError):
    """The session was exported to another gateway: running it here too would get one of
    the two logged out."""

    code = p.ErrorCode.SESSION_EXPORTED
