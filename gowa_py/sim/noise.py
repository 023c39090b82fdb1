"""Noise_XX_25519_AESGCM_SHA256 as whatsmeow speaks it, from the server (responder) side.

Handshake conventions (whatsmeow ``socket/noisehandshake.go``): the 32-byte protocol
name is used directly as the initial hash and chaining key; the connection header is the
prologue; AES-GCM nonces are 8 zero bytes + a big-endian counter that resets on every
``mix_key``; the handshake hash is the associated data. After ``split`` each direction
has its own counter and no associated data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .pb import ClientPayload, HandshakeMessage
from .tokens import DICT_VERSION, DICT_VERSIONS

NOISE_PROTOCOL = b"Noise_XX_25519_AESGCM_SHA256\x00\x00\x00\x00"
CONN_HEADER = b"WA\x06" + bytes((DICT_VERSION,))


class NoiseError(Exception):
    """The peer broke the handshake or sent an undecryptable frame."""


def x25519_public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def dh(key: X25519PrivateKey, public: bytes) -> bytes:
    if len(public) != 32:
        raise NoiseError(f"X25519 public key must be 32 bytes, got {len(public)}")
    return key.exchange(X25519PublicKey.from_public_bytes(public))


def _nonce(counter: int) -> bytes:
    return b"\x00" * 8 + counter.to_bytes(4, "big")


def _hkdf(salt: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    out = HKDF(algorithm=hashes.SHA256(), length=64, salt=salt, info=None).derive(ikm)
    return out[:32], out[32:]


class SymmetricState:
    """The handshake hash, chaining key and cipher shared by both Noise roles."""

    def __init__(self, prologue: bytes) -> None:
        self.hash = NOISE_PROTOCOL
        self.chaining_key = NOISE_PROTOCOL
        self._cipher = AESGCM(NOISE_PROTOCOL)
        self._counter = 0
        self.mix_hash(prologue)

    def mix_hash(self, data: bytes) -> None:
        self.hash = hashlib.sha256(self.hash + data).digest()

    def mix_key(self, ikm: bytes) -> None:
        self.chaining_key, key = _hkdf(self.chaining_key, ikm)
        self._cipher = AESGCM(key)
        self._counter = 0

    def encrypt(self, plaintext: bytes) -> bytes:
        ciphertext = self._cipher.encrypt(_nonce(self._counter), plaintext, self.hash)
        self._counter += 1
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt(self, ciphertext: bytes) -> bytes:
        try:
            plaintext = self._cipher.decrypt(_nonce(self._counter), ciphertext, self.hash)
        except InvalidTag as exc:
            raise NoiseError("handshake decryption failed") from exc
        self._counter += 1
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[bytes, bytes]:
        """(initiator→responder key, responder→initiator key)."""
        return _hkdf(self.chaining_key, b"")


class FrameCipher:
    """One direction of the transport phase: AES-GCM with a private counter, no AAD."""

    def __init__(self, key: bytes) -> None:
        self._cipher = AESGCM(key)
        self._counter = 0

    def encrypt(self, plaintext: bytes) -> bytes:
        ciphertext = self._cipher.encrypt(_nonce(self._counter), plaintext, None)
        self._counter += 1
        return ciphertext

    def decrypt(self, ciphertext: bytes) -> bytes:
        counter = self._counter
        self._counter += 1  # the client advances even when a frame fails
        try:
            return self._cipher.decrypt(_nonce(counter), ciphertext, None)
        except InvalidTag as exc:
            raise NoiseError(f"frame {counter} failed to decrypt") from exc


@dataclass
class HandshakeResult:
    client_static: bytes
    payload: ClientPayload
    reader: FrameCipher
    writer: FrameCipher
    #: The WABinary dictionary the client announced in its connection header.
    dict_version: int


class NoiseResponder:
    """Server side of the XX handshake: ``server_hello`` then ``client_finish``."""

    def __init__(self, header: bytes, static_key: X25519PrivateKey, cert_chain: bytes) -> None:
        if len(header) != 4 or header[:3] != CONN_HEADER[:3] or header[3] not in DICT_VERSIONS:
            raise NoiseError(f"unsupported connection header {header.hex()}")
        self._dict_version = header[3]
        self._state = SymmetricState(header)
        self._static = static_key
        self._cert_chain = cert_chain
        self._ephemeral = X25519PrivateKey.generate()

    def server_hello(self, client_hello_frame: bytes) -> bytes:
        """Consume the ClientHello frame; return the ServerHello frame."""
        msg = HandshakeMessage.FromString(client_hello_frame)
        client_ephemeral = msg.clientHello.ephemeral
        if len(client_ephemeral) != 32:
            raise NoiseError("ClientHello without a 32-byte ephemeral key")
        self._client_ephemeral = client_ephemeral
        state = self._state
        state.mix_hash(client_ephemeral)
        ephemeral_pub = x25519_public(self._ephemeral)
        state.mix_hash(ephemeral_pub)
        state.mix_key(dh(self._ephemeral, client_ephemeral))
        static_ct = state.encrypt(x25519_public(self._static))
        state.mix_key(dh(self._static, client_ephemeral))
        payload_ct = state.encrypt(self._cert_chain)
        reply = HandshakeMessage()
        reply.serverHello.ephemeral = ephemeral_pub
        reply.serverHello.static = static_ct
        reply.serverHello.payload = payload_ct
        return reply.SerializeToString()

    def client_finish(self, frame: bytes) -> HandshakeResult:
        """Consume the ClientFinish frame; return the client's identity and the transport keys."""
        finish = HandshakeMessage.FromString(frame).clientFinish
        state = self._state
        client_static = state.decrypt(finish.static)
        if len(client_static) != 32:
            raise NoiseError("client static key is not 32 bytes")
        state.mix_key(dh(self._ephemeral, client_static))
        payload = ClientPayload.FromString(state.decrypt(finish.payload))
        read_key, write_key = state.split()
        return HandshakeResult(
            client_static,
            payload,
            FrameCipher(read_key),
            FrameCipher(write_key),
            self._dict_version,
        )
