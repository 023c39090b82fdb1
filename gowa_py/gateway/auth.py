"""API key (``X-Api-Key``) and GoWA-style basic auth, compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from aiohttp import web

from gowa_py.config import Settings
from gowa_py.gateway.errors import error_response

PUBLIC_PATHS = frozenset({"/healthz", "/health"})


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self._api_key = settings.api_key
        self._pairs = settings.basic_auth_pairs

    @property
    def enabled(self) -> bool:
        return bool(self._api_key or self._pairs)

    def check(self, request: web.Request) -> bool:
        if self._api_key:
            given = request.headers.get("X-Api-Key")
            if given is not None and _equal(given, self._api_key):
                return True
        header = request.headers.get("Authorization", "")
        if self._pairs and header[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            user, _, password = decoded.partition(":")
            matched = False
            for known_user, known_password in self._pairs:
                # Check every pair so the time taken does not reveal which user exists.
                matched |= _equal(user, known_user) & _equal(password, known_password)
            return matched
        return False

    def middleware(self) -> Any:
        @web.middleware
        async def authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
            if not self.enabled or request.path in PUBLIC_PATHS or self.check(request):
                return await handler(request)
            response = error_response(
                401, "UNAUTHORIZED", "missing or wrong credentials (X-Api-Key or basic auth)"
            )
            if self._pairs:
                response.headers["WWW-Authenticate"] = 'Basic realm="gowa"'
            return response

        return authenticate
