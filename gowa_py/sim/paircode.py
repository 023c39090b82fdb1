"""Pairing-code login ("link with phone number"), the phone's half of whatsmeow's pair-code.go.

1. The companion sends ``link_code_companion_reg stage="companion_hello"`` with its
   ephemeral key wrapped under the 8-character code it shows (PBKDF2 + AES-CTR); the
   sandbox answers with a pairing ref.
2. ``POST /sim/phones/{p}/pair-code`` enters the code, as the user would on the phone:
   the phone unwraps the companion key, wraps its own ephemeral key under the same code
   and notifies the companion (``stage="primary_hello"``) with its identity key.
3. The companion answers ``stage="companion_finish"`` with a key bundle encrypted under
   the ephemeral shared secret. A wrong code shows up here: the bundle does not decrypt.
   Both sides derive the ADV secret from both shared secrets and fresh randomness,
   and the phone finishes with the same ``pair-success`` as a QR scan.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .binary import Node
from .connection import Connection
from .errors import SimError
from .jid import SERVER_JID
from .network import Network, iq_error, iq_result, now
from .noise import dh, x25519_public
from .pairing import Pairing
from .phone import PrimaryPhone
from .store import Device, Phone

log = logging.getLogger(__name__)

CODE_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
PBKDF2_ROUNDS = 2 << 16
FINISH_TIMEOUT = 15.0
BUNDLE_INFO = b"link_code_pairing_key_bundle_encryption_key"


def _code_key(code: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", code.encode(), salt, PBKDF2_ROUNDS, 32)


def _ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return cipher.update(data) + cipher.finalize()


def _hkdf(ikm: bytes, salt: bytes | None, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def unwrap_key(code: str, wrapped: bytes) -> bytes:
    """``salt(32) || iv(16) || AES-CTR(PBKDF2(code, salt), key)`` → key."""
    return _ctr(_code_key(code, wrapped[:32]), wrapped[32:48], wrapped[48:80])


def wrap_key(code: str, key: bytes) -> bytes:
    salt, iv = os.urandom(32), os.urandom(16)
    return salt + iv + _ctr(_code_key(code, salt), iv, key)


def normalize_code(code: str) -> str:
    text = code.replace("-", "").strip().upper()
    if len(text) != 8 or any(c not in CODE_ALPHABET for c in text):
        raise SimError("INVALID_CODE", "a pairing code is 8 characters like ABCD-EFGH")
    return text


@dataclass
class _Pending:
    conn: Connection
    wrapped_companion_key: bytes
    ref: bytes
    finish: asyncio.Future[bytes] | None = None
    ephemeral: X25519PrivateKey | None = None
    companion_key: bytes = b""
    phone: Phone | None = None


class CodePairing:
    """Companions waiting for their pairing code to be entered on a phone."""

    def __init__(self, net: Network, pairing: Pairing) -> None:
        self.net = net
        self.pairing = pairing
        self._pending: dict[str, _Pending] = {}

    def handle_iq(self, net: Network, conn: Connection, iq: Node) -> None:
        reg = iq.child("link_code_companion_reg")
        assert reg is not None
        stage = reg.attr("stage")
        if stage == "companion_hello":
            self._hello(conn, iq, reg)
        elif stage == "companion_finish":
            self._finish(conn, iq, reg)
        else:
            log.warning("%r: unknown link_code_companion_reg stage %r", conn, stage)
            conn.send(iq_error(iq, 501, "feature-not-implemented"))

    def _hello(self, conn: Connection, iq: Node, reg: Node) -> None:
        jid = reg.jid_attr("jid")
        wrapped = reg.path("link_code_pairing_wrapped_companion_ephemeral_pub")
        noise = reg.path("companion_server_auth_key_pub")
        if (
            jid is None
            or wrapped is None
            or len(wrapped.bytes_content()) < 80
            or self.pairing.registration(conn) is None
        ):
            conn.send(iq_error(iq, 400, "bad-request"))
            return
        if noise is None or noise.bytes_content() != conn.client_static:
            conn.send(iq_error(iq, 401, "not-authorized"))
            return
        ref = os.urandom(16).hex().encode()
        self._pending[jid.user] = _Pending(conn, wrapped.bytes_content(), ref)
        conn.send(
            iq_result(
                iq, [Node("link_code_companion_reg", {}, [Node("link_code_pairing_ref", {}, ref)])]
            )
        )
        log.info("%r waits for a pairing code for %s", conn, jid.user)

    async def enter_code(self, phone: Phone, code: str) -> Device:
        """Type ``code`` into ``phone``; returns the linked device once pairing completes."""
        code = normalize_code(code)
        pending = self._pending.get(phone.phone)
        if pending is None or pending.conn.closed or pending.finish is not None:
            raise SimError(
                "CODE_NOT_FOUND",
                f"no companion is waiting for a pairing code for {phone.phone}",
                404,
            )
        companion_key = await asyncio.to_thread(unwrap_key, code, pending.wrapped_companion_key)
        wrapped_primary = await asyncio.to_thread(
            wrap_key, code, x25519_public(ephemeral := X25519PrivateKey.generate())
        )
        pending.ephemeral, pending.companion_key, pending.phone = ephemeral, companion_key, phone
        pending.finish = asyncio.get_running_loop().create_future()
        identity = x25519_public(PrimaryPhone(phone).identity_key())
        pending.conn.send(
            Node(
                "notification",
                {
                    "from": SERVER_JID,
                    "type": "link_code_companion_reg",
                    "id": self.net.next_id(),
                    "t": now(),
                },
                [
                    Node(
                        "link_code_companion_reg",
                        {"stage": "primary_hello"},
                        [
                            Node("link_code_pairing_ref", {}, pending.ref),
                            Node(
                                "link_code_pairing_wrapped_primary_ephemeral_pub",
                                {},
                                wrapped_primary,
                            ),
                            Node("primary_identity_pub", {}, identity),
                        ],
                    )
                ],
            )
        )
        try:
            adv_secret = await asyncio.wait_for(asyncio.shield(pending.finish), FINISH_TIMEOUT)
        except TimeoutError as exc:
            raise SimError("PAIRING_TIMEOUT", "the companion did not finish pairing", 504) from exc
        finally:
            self._pending.pop(phone.phone, None)
        device = self.pairing.link(pending.conn, phone, adv_secret)
        log.info("phone %s entered a pairing code: linking device %d", phone.phone, device.device)
        return device

    def _finish(self, conn: Connection, iq: Node, reg: Node) -> None:
        pending = next((p for p in self._pending.values() if p.conn is conn), None)
        bundle = reg.path("link_code_pairing_wrapped_key_bundle")
        if (
            pending is None
            or pending.finish is None
            or pending.finish.done()
            or pending.ephemeral is None
            or pending.phone is None
            or bundle is None
        ):
            conn.send(iq_error(iq, 400, "bad-request"))
            return
        wrapped = bundle.bytes_content()
        ephemeral_shared = dh(pending.ephemeral, pending.companion_key)
        key = _hkdf(ephemeral_shared, wrapped[:32], BUNDLE_INFO)
        try:
            plain = AESGCM(key).decrypt(wrapped[32:44], wrapped[44:], None)
        except InvalidTag:
            conn.send(iq_error(iq, 400, "bad-request"))
            pending.finish.set_exception(
                SimError("WRONG_CODE", "the pairing code does not match the companion's")
            )
            return
        companion_identity, _primary_identity, adv_random = plain[:32], plain[32:64], plain[64:96]
        registration = self.pairing.registration(conn)
        if registration is None or companion_identity != registration.identity_pub:
            conn.send(iq_error(iq, 400, "bad-request"))
            pending.finish.set_exception(
                SimError("CODE_MISMATCH", "the key bundle names another companion identity")
            )
            return
        identity_shared = dh(PrimaryPhone(pending.phone).identity_key(), companion_identity)
        adv_secret = _hkdf(ephemeral_shared + identity_shared + adv_random, None, b"adv_secret")
        conn.send(iq_result(iq))
        pending.finish.set_result(adv_secret)

    def forget(self, conn: Connection) -> None:
        for phone in [p for p, pending in self._pending.items() if pending.conn is conn]:
            pending = self._pending.pop(phone)
            if pending.finish is not None and not pending.finish.done():
                pending.finish.set_exception(
                    SimError("CODE_NOT_FOUND", "the companion disconnected", 404)
                )
