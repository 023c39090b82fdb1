"""API keys stored as hashes (``api_key_hash``), checked in constant time.

Two formats, both printed by ``gowa hash-key``:

- ``sha256:<hex>`` for random keys (what ``gowa hash-key`` generates): a random 256-bit
  key cannot be guessed, so one fast hash is enough and every request stays cheap;
- ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`` for keys a person chose, slow
  on purpose. A key that matched once is remembered (by its SHA-256) so only wrong keys
  pay the cost again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PBKDF2_ITERATIONS = 600_000
_SHA256 = "sha256:"
_PBKDF2 = "pbkdf2_sha256"


def hash_key(key: str, *, slow: bool = False, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The ``api_key_hash`` value for ``key``."""
    if not slow:
        return _SHA256 + hashlib.sha256(key.encode()).hexdigest()
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", key.encode(), salt, iterations)
    return f"{_PBKDF2}${iterations}${salt.hex()}${digest.hex()}"


def check_format(stored: str) -> None:
    """Raise ValueError naming what is wrong with an ``api_key_hash`` value."""
    _parse(stored)


def _parse(stored: str) -> tuple[int, bytes, bytes]:
    """(iterations, salt, digest); iterations 0 means plain SHA-256."""
    try:
        if stored.startswith(_SHA256):
            digest = bytes.fromhex(stored[len(_SHA256) :])
            if len(digest) != 32:
                raise ValueError
            return 0, b"", digest
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != _PBKDF2 or int(iterations) < 1 or not salt or len(digest) != 64:
            raise ValueError
        return int(iterations), bytes.fromhex(salt), bytes.fromhex(digest)
    except ValueError:
        raise ValueError(
            'expected "sha256:<64 hex>" or "pbkdf2_sha256$<iterations>$<salt hex>$<64 hex>" '
            "(see `gowa hash-key`)"
        ) from None


class HashedKey:
    """One stored hash; :meth:`matches` compares in constant time."""

    def __init__(self, stored: str) -> None:
        self._iterations, self._salt, self._digest = _parse(stored)
        self._known: set[bytes] = set()

    def matches(self, key: str) -> bool:
        quick = hashlib.sha256(key.encode()).digest()
        if not self._iterations:
            return hmac.compare_digest(quick, self._digest)
        if quick in self._known:
            return True
        digest = hashlib.pbkdf2_hmac("sha256", key.encode(), self._salt, self._iterations)
        if hmac.compare_digest(digest, self._digest):
            self._known.add(quick)
            return True
        return False
