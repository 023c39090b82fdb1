"""The simulated primary phone of an account: it signs its companions' device identities.

On a real phone, scanning a QR code makes the phone sign an ``ADVDeviceIdentity`` for the
new companion with the account key and wrap it in an HMAC keyed by the QR's ADV secret.
The companion checks both (whatsmeow's ``pair.go``, ``handlePairSuccess``), then
counter-signs with its own identity.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from .certs import XEdSigner, xeddsa_verify
from .pb import (
    ADVDeviceIdentity,
    ADVKeyIndexList,
    ADVSignedDeviceIdentity,
    ADVSignedDeviceIdentityHMAC,
    ADVSignedKeyIndexList,
)
from .store import Phone

ACCOUNT_SIGNATURE_PREFIX = b"\x06\x00"
DEVICE_SIGNATURE_PREFIX = b"\x06\x01"
KEY_INDEX_LIST_SIGNATURE_PREFIX = b"\x06\x02"


class PrimaryPhone:
    """Signing operations of one account's phone (device 0)."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone
        self.signer = XEdSigner(phone.signing_seed)

    def identity_key(self) -> X25519PrivateKey:
        """The phone's Curve25519 identity: same seed, same public key as :attr:`signer`.

        X25519 clamps ``SHA512(seed)[:32]``, the scalar Ed25519 derives from the seed,
        so its public key is the Montgomery form of the signing key.
        """
        return X25519PrivateKey.from_private_bytes(
            hashlib.sha512(self.phone.signing_seed).digest()[:32]
        )

    def raw_id(self) -> int:
        """The account's ADV raw id: the same in every companion's device identity and in
        the key-index list that vouches for them (derived from the account key, so stable)."""
        return int.from_bytes(hashlib.sha256(b"adv raw id" + self.signer.public).digest()[:4]) >> 1

    def link_companion(self, key_index: int, companion_identity: bytes, adv_secret: bytes) -> bytes:
        """Serialized ``ADVSignedDeviceIdentityHMAC`` for the ``pair-success`` stanza."""
        details = ADVDeviceIdentity(
            rawID=self.raw_id(), timestamp=int(time.time()), keyIndex=key_index
        ).SerializeToString()
        signature = self.signer.sign(ACCOUNT_SIGNATURE_PREFIX + details + companion_identity)
        signed = ADVSignedDeviceIdentity(
            details=details, accountSignatureKey=self.signer.public, accountSignature=signature
        ).SerializeToString()
        mac = hmac.new(adv_secret, signed, hashlib.sha256).digest()
        return ADVSignedDeviceIdentityHMAC(details=signed, HMAC=mac).SerializeToString()

    def verify_companion_signature(self, signed_identity: bytes, companion_identity: bytes) -> bool:
        """Check the ``deviceSignature`` a companion returns in ``pair-device-sign``."""
        identity = ADVSignedDeviceIdentity.FromString(signed_identity)
        message = (
            DEVICE_SIGNATURE_PREFIX + identity.details + companion_identity + self.signer.public
        )
        return xeddsa_verify(companion_identity, message, identity.deviceSignature)

    def key_index_list(self, valid: list[int], current: int, timestamp: int) -> bytes:
        """Serialized ``ADVSignedKeyIndexList``: the key indexes of the account's devices
        that are valid (the phone's 0 and its companions'), signed with the account key
        over ``06 02 || details``, as WhatsApp sends it beside a device list."""
        details = ADVKeyIndexList(
            rawID=self.raw_id(), timestamp=timestamp, currentIndex=current, validIndexes=valid
        ).SerializeToString()
        signature = self.signer.sign(KEY_INDEX_LIST_SIGNATURE_PREFIX + details)
        return ADVSignedKeyIndexList(
            details=details, accountSignature=signature, accountSignatureKey=self.signer.public
        ).SerializeToString()
