"""API key (``X-Api-Key``) and GoWA-style basic auth, compared in constant time, plus the
dashboard's login cookie (with a CSRF token for state-changing requests)."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from aiohttp import web

from gowa_py.config import Settings
from gowa_py.gateway.errors import ApiError, error_response
from gowa_py.gateway.websessions import COOKIE_NAME, CSRF_HEADER, WebSession, WebSessions
from gowa_py.keyhash import HashedKey, SlowKeyVerifier, VerifierBusy

PUBLIC_PATHS = frozenset(
    {"/healthz", "/health", "/dashboard", "/api/dashboard/auth", "/api/dashboard/login"}
)
# The dashboard's static files: the page must load to show its login form.
PUBLIC_PREFIXES = ("/dashboard/",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sent by the dashboard so a 401 does not make the browser pop up its basic-auth dialog.
DASHBOARD_HEADER = "X-Gowa-Dashboard"


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self._api_key = settings.api_key
        hashed = HashedKey(settings.api_key_hash) if settings.api_key_hash else None
        threads = settings.api_key_hash_threads
        self._hashed = hashed if hashed is not None and not hashed.slow else None
        self._slow = (
            SlowKeyVerifier(hashed, threads, queue=16 * threads)
            if hashed is not None and hashed.slow
            else None
        )
        self._pairs = settings.basic_auth_pairs
        self.web_sessions = WebSessions()

    @property
    def enabled(self) -> bool:
        return bool(self._api_key or self._hashed or self._slow or self._pairs)

    async def check(self, request: web.Request) -> bool:
        given = request.headers.get("X-Api-Key")
        if given is not None and await self.check_api_key(given):
            return True
        header = request.headers.get("Authorization", "")
        if self._pairs and header[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            user, _, password = decoded.partition(":")
            return self.check_credentials(user, password)
        return False

    def check_credentials(self, user: str, password: str) -> bool:
        """One of the basic-auth pairs (from the header or the dashboard's login form)."""
        matched = False
        for known_user, known_password in self._pairs:
            # Check every pair so the time taken does not reveal which user exists.
            matched |= _equal(user, known_user) & _equal(password, known_password)
        return matched

    async def check_api_key(self, key: str) -> bool:
        """The plain ``api_key`` or the hashed ``api_key_hash`` (either may be set); 429
        while too many slow hashes are being checked."""
        if self._api_key and _equal(key, self._api_key):
            return True
        if self._hashed is not None:
            return self._hashed.matches(key)
        if self._slow is None:
            return False
        try:
            return await self._slow.matches(key)
        except VerifierBusy:
            raise ApiError(
                429,
                "TOO_MANY_REQUESTS",
                "too many API keys are being checked at once; retry shortly",
                headers={"Retry-After": "1"},
            ) from None

    def close(self) -> None:
        if self._slow is not None:
            self._slow.close()

    def web_session(self, request: web.Request) -> WebSession | None:
        return self.web_sessions.lookup(request.cookies.get(COOKIE_NAME))

    def middleware(self) -> Any:
        @web.middleware
        async def authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
            path = request.path
            if (
                not self.enabled
                or path in PUBLIC_PATHS
                or path.startswith(PUBLIC_PREFIXES)
                or await self.check(request)
            ):
                return await handler(request)
            session = self.web_session(request)
            if session is not None:
                if request.method not in SAFE_METHODS:
                    given = request.headers.get(CSRF_HEADER, "")
                    if not _equal(given, session.csrf):
                        return error_response(
                            403, "CSRF_FAILED", f"missing or wrong {CSRF_HEADER} header"
                        )
                origin = request.headers.get("Origin")
                if origin is not None and origin.split("://", 1)[-1] != request.host:
                    return error_response(403, "FORBIDDEN", "cross-origin request refused")
                return await handler(request)
            response = error_response(
                401, "UNAUTHORIZED", "missing or wrong credentials (X-Api-Key or basic auth)"
            )
            if self._pairs and DASHBOARD_HEADER not in request.headers:
                response.headers["WWW-Authenticate"] = 'Basic realm="gowa"'
            return response

        return authenticate
