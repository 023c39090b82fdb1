"""The sending half of a Signal session, enough for the phone (device 0) to reach a companion.

A real phone sends a new companion protocol messages (the app-state key share) encrypted
end to end, so the sandbox's phone must be a Signal sender: X3DH against the bundle the
companion registered (identity, signed prekey, optionally a one-time prekey), one
Diffie-Hellman ratchet step, and the first message key of the sending chain. Every
message is a fresh ``pkmsg``, so no ratchet state is kept between messages: the
companion starts a new session from each one, which libsignal allows.

The wire formats are libsignal's version 3 (``WhisperText``/``WhisperRatchet``/
``WhisperMessageKeys`` derivations, an 8-byte truncated HMAC); their protobufs have a
handful of scalar fields and are encoded here field by field.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .noise import dh, x25519_public

VERSION_BYTE = bytes([(3 << 4) | 3])
DJB_TYPE = b"\x05"
MAC_LENGTH = 8


@dataclass(frozen=True)
class Bundle:
    """A recipient device's public keys (32-byte Curve25519 values, without type byte)."""

    registration_id: int
    identity: bytes
    signed_prekey_id: int
    signed_prekey: bytes
    prekey: tuple[int, bytes] | None = None


def _hkdf(secret: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(secret)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: int | bytes) -> bytes:
    """One protobuf field: a varint (wire type 0) or length-delimited bytes (type 2)."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint((number << 3) | 2) + _varint(len(value)) + value


def encrypt_prekey_message(
    identity: X25519PrivateKey, registration_id: int, bundle: Bundle, plaintext: bytes
) -> bytes:
    """A serialized ``PreKeySignalMessage`` carrying ``plaintext`` to ``bundle``'s device."""
    base = X25519PrivateKey.generate()
    secrets = b"\xff" * 32 + dh(identity, bundle.signed_prekey)
    secrets += dh(base, bundle.identity) + dh(base, bundle.signed_prekey)
    if bundle.prekey is not None:
        secrets += dh(base, bundle.prekey[1])
    derived = _hkdf(secrets, None, b"WhisperText", 64)
    root_key = derived[:32]
    ratchet = X25519PrivateKey.generate()
    chain = _hkdf(dh(ratchet, bundle.signed_prekey), root_key, b"WhisperRatchet", 64)[32:]
    seed = hmac.new(chain, b"\x01", hashlib.sha256).digest()
    keys = _hkdf(seed, None, b"WhisperMessageKeys", 80)
    cipher_key, mac_key, iv = keys[:32], keys[32:64], keys[64:80]
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(cipher_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(plaintext) + padder.finalize())
    ciphertext += encryptor.finalize()
    body = VERSION_BYTE + (
        _field(1, DJB_TYPE + x25519_public(ratchet))
        + _field(2, 0)
        + _field(3, 0)
        + _field(4, ciphertext)
    )
    sender_identity = DJB_TYPE + x25519_public(identity)
    mac = hmac.new(
        mac_key, sender_identity + DJB_TYPE + bundle.identity + body, hashlib.sha256
    ).digest()[:MAC_LENGTH]
    prekey_fields = _field(1, bundle.prekey[0]) if bundle.prekey is not None else b""
    return VERSION_BYTE + (
        _field(5, registration_id)
        + prekey_fields
        + _field(6, bundle.signed_prekey_id)
        + _field(2, DJB_TYPE + x25519_public(base))
        + _field(3, sender_identity)
        + _field(4, body + mac)
    )
