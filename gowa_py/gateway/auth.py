"""API key (``X-Api-Key``) and GoWA-style basic auth, compared in constant time, plus the
dashboard's login cookie (with a CSRF token for state-changing requests).

Every request leaves here with a :class:`Principal`, the identity it proved (not a header
it merely sent), which the rate limiter keys its buckets by. Wrong header credentials
count against the client's address (:mod:`gowa_py.gateway.throttle`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from aiohttp import web

from gowa_py.config import Settings
from gowa_py.gateway import apikeys
from gowa_py.gateway.browser import Origins
from gowa_py.gateway.errors import ApiError, error_response
from gowa_py.gateway.principal import ADMIN_KEY, PRINCIPAL, Principal
from gowa_py.gateway.throttle import FailureThrottle, client_address
from gowa_py.gateway.websessions import COOKIE_NAME, CSRF_HEADER, WebSession, WebSessions
from gowa_py.keyhash import HashedKey, SlowKeyVerifier, VerifierBusy
from gowa_py.protocol import ErrorCode
from gowa_py.storage.interfaces import RegistryStorage, SignInStorage

# Public, but it tells whether the request's credentials are good, so they are checked
# (and throttled) as on any other route.
AUTH_STATE_PATH = "/api/dashboard/auth"
PUBLIC_PATHS = frozenset(
    {"/healthz", "/health", "/dashboard", AUTH_STATE_PATH, "/api/dashboard/login"}
)
# The dashboard's static files: the page must load to show its login form.
PUBLIC_PREFIXES = ("/dashboard/",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sent by the dashboard so a 401 does not make the browser pop up its basic-auth dialog.
DASHBOARD_HEADER = "X-Gowa-Dashboard"


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class Authenticator:
    def __init__(
        self,
        settings: Settings,
        registry: RegistryStorage,
        origins: Origins,
        sign_ins: SignInStorage | None = None,
    ) -> None:
        self._registry = registry
        self._origins = origins
        self._gowa_paths: frozenset[str] | None = None
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
        #: ``sign_ins``: the dashboard's sign-ins shared by a cluster's nodes.
        self.web_sessions = WebSessions(shared=sign_ins)
        self.throttle = FailureThrottle(settings.auth_max_failures, settings.auth_failure_window)

    @property
    def enabled(self) -> bool:
        return bool(self._api_key or self._hashed or self._slow or self._pairs)

    async def identify(self, request: web.Request) -> Principal | None:
        """The principal the request's headers prove (an ``X-Api-Key`` that does not match
        still lets basic auth in the same request try)."""
        given = request.headers.get("X-Api-Key")
        if given is not None:
            scoped = self.scoped_key(given)
            if scoped is not None:
                return scoped
            if await self.check_api_key(given):
                return ADMIN_KEY
        header = request.headers.get("Authorization", "")
        if self._pairs and header[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            user, _, password = decoded.partition(":")
            if self.check_credentials(user, password):
                return Principal("user:" + user)
        return None

    def scoped_key(self, key: str) -> Principal | None:
        record = apikeys.verify(self._registry, key)
        if record is None:
            return None
        return Principal(f"key:{record.id}", frozenset(record.sessions), record.scope == "read")

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
                ErrorCode.TOO_MANY_REQUESTS,
                "too many API keys are being checked at once; retry shortly",
                headers={"Retry-After": "1"},
            ) from None

    def close(self) -> None:
        if self._slow is not None:
            self._slow.close()

    def web_session(self, request: web.Request) -> WebSession | None:
        return self.web_sessions.lookup(request.cookies.get(COOKIE_NAME))

    def blocked(self, request: web.Request) -> ApiError | None:
        """The 429 for an address that failed to authenticate too often, else None."""
        wait = self.throttle.retry_after(client_address(request.remote))
        if not wait:
            return None
        return ApiError(
            ErrorCode.TOO_MANY_REQUESTS,
            f"too many failed authentications from this address; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )

    def failed(self, request: web.Request) -> None:
        self.throttle.failed(client_address(request.remote))

    async def _from_headers(self, request: web.Request, public: bool) -> Principal | None:
        """Header credentials, counted against the address when wrong. A blocked address
        gets 429 before its credentials are even looked at (a public route just answers
        as to an anonymous client), so guessing stops and costs nothing."""
        headers = request.headers
        if "X-Api-Key" not in headers and "Authorization" not in headers:
            return None
        refusal = self.blocked(request)
        if refusal is not None:
            if public:
                return None
            raise refusal
        found = await self.identify(request)
        if found is None:
            self.failed(request)
        return found

    def _unprefixed_gowa(self, app: web.Application) -> frozenset[str]:
        """Read from the router at the first scoped request: its routes are fixed by then."""
        if self._gowa_paths is None:
            self._gowa_paths = apikeys.gowa_paths(app.router)
        return self._gowa_paths

    def middleware(self) -> Any:
        @web.middleware
        async def authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
            if not self.enabled:
                return await handler(request)
            path = request.path
            public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
            if public and path != AUTH_STATE_PATH:
                return await handler(request)
            found = await self._from_headers(request, public)
            if found is not None:
                if found.sessions is not None and not public:
                    gowa = self._unprefixed_gowa(request.app)
                    apikeys.authorize(request, found.sessions, found.read_only, gowa)
                request[PRINCIPAL] = found
                return await handler(request)
            if public:
                return await handler(request)
            session = self.web_session(request)
            if session is not None:
                if request.method not in SAFE_METHODS:
                    given = request.headers.get(CSRF_HEADER, "")
                    if not _equal(given, session.csrf):
                        return error_response(
                            ErrorCode.CSRF_FAILED, f"missing or wrong {CSRF_HEADER} header"
                        )
                origin = request.headers.get("Origin")
                if origin is not None and not self._origins.own_origin(request, origin):
                    return error_response(ErrorCode.FORBIDDEN, "cross-origin request refused")
                request[PRINCIPAL] = session_principal(session)
                return await handler(request)
            response = error_response(
                ErrorCode.UNAUTHORIZED, "missing or wrong credentials (X-Api-Key or basic auth)"
            )
            if self._pairs and DASHBOARD_HEADER not in request.headers:
                response.headers["WWW-Authenticate"] = 'Basic realm="gowa"'
            return response

        return authenticate


def session_principal(session: WebSession) -> Principal:
    """A dashboard login acts as the credential it logged in with."""
    return ADMIN_KEY if session.user == "api-key" else Principal("user:" + session.user)
