"""Browser sessions for the dashboard: the login form trades the API key (or a basic-auth
user and password) for a random cookie, so the key never sits in a URL or in storage.

Tokens live in this process's memory only (a gateway restart logs everyone out) and are
kept as SHA-256 digests, so a memory dump does not hand out live cookies. Each session
also has a CSRF token that the page keeps in JavaScript memory and sends back in
``X-CSRF-Token`` on every state-changing request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

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
    def __init__(self, ttl: float = SESSION_TTL_S) -> None:
        self.ttl = ttl
        self._sessions: dict[str, WebSession] = {}

    def create(self, user: str) -> tuple[str, WebSession]:
        """A new (cookie token, session); the token itself is not kept."""
        self._prune()
        token = secrets.token_urlsafe(32)
        session = WebSession(user, secrets.token_urlsafe(32), time.time() + self.ttl)
        self._sessions[_digest(token)] = session
        return token, session

    def lookup(self, token: str | None) -> WebSession | None:
        if not token:
            return None
        key = _digest(token)
        session = self._sessions.get(key)
        if session is not None and session.expires_at <= time.time():
            del self._sessions[key]
            return None
        return session

    def drop(self, token: str | None) -> None:
        if token:
            self._sessions.pop(_digest(token), None)

    def _prune(self) -> None:
        now = time.time()
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]
