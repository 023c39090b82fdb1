"""Who may speak on the sockets: CURVE keys minted per worker process, the ZAP handler that
admits only those, and the session each connection authenticated as."""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from gowa_py import protocol as p

log = logging.getLogger("gowa_py.ipc")

ZAP_DOMAIN = "gowa"
#: CURVE handshakes one worker key may make (a worker makes one per socket).
MAX_HANDSHAKES = 8
#: Seconds between two warnings about refused messages of one kind.
REFUSAL_LOG_INTERVAL = 10.0


class Refusals:
    """Counts messages and handshakes refused for speaking as someone else, and warns
    about them at most once per :data:`REFUSAL_LOG_INTERVAL` per kind: a hostile worker
    must not be able to flood the gateway's log. Called from the ZAP thread too."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._last: dict[str, float] = {}

    def __call__(self, kind: str, detail: str) -> None:
        self.counts[kind] += 1
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < REFUSAL_LOG_INTERVAL:
            return
        self._last[kind] = now
        log.warning("refused %s: %s (%d refused so far)", kind, detail, self.counts[kind])


class Keyring:
    """Which session each worker key speaks for; the ZAP handler's credentials provider.

    Mutated on the event loop, read on the ZAP thread: single dict operations, which the
    GIL keeps atomic.
    """

    def __init__(self, refuse: Refusals) -> None:
        self._sessions: dict[bytes, str] = {}  # Z85 public key -> session id
        self._keys: dict[str, bytes] = {}  # session id -> its current Z85 public key
        self._handshakes: Counter[bytes] = Counter()
        self._refuse = refuse

    def admit(self, session_id: str) -> bytes:
        """A new key pair for ``session_id``'s next worker, replacing the previous one;
        returns the secret half (Z85), which the gateway does not keep."""
        public, secret = zmq.curve_keypair()
        self.revoke(session_id)
        self._sessions[public] = session_id
        self._keys[session_id] = public
        return secret

    def revoke(self, session_id: str) -> None:
        public = self._keys.pop(session_id, None)
        if public is not None:
            self._sessions.pop(public, None)
            self._handshakes.pop(public, None)

    def session_of(self, public: bytes) -> str:
        return self._sessions.get(public, "")

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP: accept a handshake with a key the gateway issued and has not replaced."""
        session_id = self._sessions.get(key)
        if session_id is None:
            self._refuse("handshake", "a key the gateway did not issue or has replaced")
            return False
        self._handshakes[key] += 1
        if self._handshakes[key] > MAX_HANDSHAKES:
            self._refuse("handshake", f"more than {MAX_HANDSHAKES} connections as {session_id!r}")
            return False
        return True


class ZapAuthenticator(ThreadAuthenticator):
    """pyzmq's ZAP handler (on its own thread, so handshakes never wait for the event
    loop), with the key's session id as the connection's ``User-Id``."""

    def __init__(self, context: zmq.Context[Any], keyring: Keyring) -> None:
        super().__init__(context, log=logging.getLogger("gowa.ipc.zap"))
        self._keyring = keyring

    def curve_user_id(self, client_public_key: bytes) -> str:
        return self._keyring.session_of(z85.encode(client_public_key))


def authenticated_as(frame: zmq.Frame) -> str:
    """The session a message's connection authenticated as; "" for none (a connection
    whose key was revoked during its handshake carries no ``User-Id``)."""
    try:
        return str(frame.get("User-Id"))
    except zmq.ZMQError:
        return ""


def curve_server(sock: zmq.Socket[bytes], secret_key: bytes) -> None:
    sock.curve_server = True
    sock.curve_secretkey = secret_key
    sock.zap_domain = ZAP_DOMAIN.encode()
    # Without it, libzmq accepts any CURVE client when no ZAP handler answers.
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)


def curve_client(sock: zmq.Socket[bytes], server_key: str, keys: p.WorkerKeys) -> None:
    sock.curve_serverkey = server_key.encode()
    sock.curve_publickey = zmq.curve_public(keys.secret_key)
    sock.curve_secretkey = keys.secret_key
