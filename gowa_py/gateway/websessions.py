"""Browser sessions for the dashboard: the login form trades the API key (or a basic-auth
user and password) for a random cookie, so the key never sits in a URL or in storage.

Tokens are kept as SHA-256 digests only, so a memory dump (or a read of the database)
does not hand out live cookies. A single gateway keeps them in its memory (a restart
logs everyone out); the nodes of a cluster share them in PostgreSQL
(``gowa_py.storage.signins``), so a cookie works on every node behind a load balancer
and signing out on one signs out on all. Each session also has a CSRF token that the
page keeps in JavaScript memory and sends back in ``X-CSRF-Token`` on every
state-changing request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from gowa_py.storage.interfaces import SignInStorage

COOKIE_NAME = "gowa_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL_S = 12 * 3600.0


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class WebSession:
    user: str
    csrf: str
    expires_at: float


class WebSessions:
    """Sign-ins in this process's memory, or in ``shared`` storage when given."""

    def __init__(self, ttl: float = SESSION_TTL_S, shared: SignInStorage | None = None) -> None:
        self.ttl = ttl
        self._shared = shared
        self._sessions: dict[str, WebSession] = {}

    def create(self, user: str) -> tuple[str, WebSession]:
        """A new (cookie token, session); the token itself is not kept."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        if self._shared is not None:
            expires_at = self._shared.add(_digest(token), user, csrf, self.ttl)
            return token, WebSession(user, csrf, expires_at)
        self._prune()
        session = WebSession(user, csrf, time.time() + self.ttl)
        self._sessions[_digest(token)] = session
        return token, session

    def lookup(self, token: str | None) -> WebSession | None:
        if not token:
            return None
        key = _digest(token)
        if self._shared is not None:
            found = self._shared.find(key)
            return None if found is None else WebSession(*found)
        session = self._sessions.get(key)
        if session is not None and session.expires_at <= time.time():
            del self._sessions[key]
            return None
        return session

    def drop(self, token: str | None) -> None:
        if not token:
            return
        if self._shared is not None:
            self._shared.drop(_digest(token))
        else:
            self._sessions.pop(_digest(token), None)

    def _prune(self) -> None:
        now = time.time()
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]
