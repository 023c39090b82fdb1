"""GoWA's webhook signature: HMAC-SHA256 of the raw body in ``X-Hub-Signature-256``."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature-256"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, signature: str) -> bool:
    """What a receiver does; used by our tests and documented for users."""
    return hmac.compare_digest(sign(body, secret), signature)
