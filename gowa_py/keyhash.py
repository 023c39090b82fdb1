"""API keys stored as hashes (``api_key_hash``), checked in constant time.

Two formats, both printed by ``gowa hash-key``:

- ``sha256:<hex>`` for random keys (what ``gowa hash-key`` generates): a random 256-bit
  key cannot be guessed, so one fast hash is enough and every request stays cheap;
- ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`` for keys a person chose, slow
  on purpose. :class:`SlowKeyVerifier` runs that cost off the event loop, a bounded number
  at a time, and remembers each answer so a key costs it once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from gowa_py.errors import GowaError
from gowa_py.protocol import ErrorCode

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
            plain = bytes.fromhex(stored[len(_SHA256) :])
            if len(plain) != 32:
                raise ValueError
            return 0, b"", plain
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
    """One stored hash; :meth:`matches` compares in constant time (and, for PBKDF2, pays the
    full cost on every call: :class:`SlowKeyVerifier` is what the gateway uses)."""

    def __init__(self, stored: str) -> None:
        self._iterations, self._salt, self._digest = _parse(stored)

    @property
    def slow(self) -> bool:
        return bool(self._iterations)

    def matches(self, key: str) -> bool:
        if not self._iterations:
            return hmac.compare_digest(hashlib.sha256(key.encode()).digest(), self._digest)
        digest = hashlib.pbkdf2_hmac("sha256", key.encode(), self._salt, self._iterations)
        return hmac.compare_digest(digest, self._digest)


class VerifierBusy(GowaError):
    """Too many slow checks are running or waiting; the caller answers 429."""

    code = ErrorCode.TOO_MANY_REQUESTS


class SlowKeyVerifier:
    """Checks keys against a slow hash without stalling the event loop.

    PBKDF2 runs in a small thread pool (hashlib releases the GIL meanwhile), at most
    ``threads`` at a time with ``queue`` more waiting; beyond that :meth:`matches` raises
    :class:`VerifierBusy` at once instead of queueing without bound. Answers are cached
    under an HMAC of the key with a per-process random secret (a fast digest nobody can
    precompute, and the key itself is never kept): the right key stays cheap for good, the
    last ``cache_size`` wrong keys too, and concurrent checks of one key share one run.
    """

    def __init__(
        self, hashed: HashedKey, threads: int = 1, queue: int = 16, cache_size: int = 4096
    ) -> None:
        self._hashed = hashed
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="gowa-keyhash")
        self._limit = threads + queue
        self._secret = secrets.token_bytes(32)
        self._valid: set[bytes] = set()
        self._invalid: OrderedDict[bytes, None] = OrderedDict()
        self._cache_size = cache_size
        self._running: dict[bytes, asyncio.Future[bool]] = {}

    async def matches(self, key: str) -> bool:
        tag = hmac.new(self._secret, key.encode(), hashlib.sha256).digest()
        if tag in self._valid:
            return True
        if tag in self._invalid:
            self._invalid.move_to_end(tag)
            return False
        future = self._running.get(tag)
        if future is None:
            if len(self._running) >= self._limit:
                raise VerifierBusy("too many API keys are being checked at once; retry shortly")
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self._pool, self._hashed.matches, key)
            self._running[tag] = future
            future.add_done_callback(lambda done: self._remember(tag, done))
        return await asyncio.shield(future)

    def _remember(self, tag: bytes, done: asyncio.Future[bool]) -> None:
        del self._running[tag]
        if done.cancelled() or done.exception() is not None:
            return
        if done.result():
            self._valid.add(tag)
            return
        self._invalid[tag] = None
        if len(self._invalid) > self._cache_size:
            self._invalid.popitem(last=False)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
