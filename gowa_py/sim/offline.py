"""Linked devices that never connect: a contact whose phone is switched off.

Senders fetch such a device's prekey bundle and encrypt for it as for any other device,
and the sandbox holds what they send in its offline queue, as WhatsApp's servers do for
a phone that is off. Without one, a sandbox contact has no device at all: senders
encrypt for nobody and ask the server for the contact's devices again at every message
(whatsmeow caches only non-empty device lists). The keys are real, so the bundle
verifies; their private halves are not kept, so nothing ever reads those messages.
"""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from .certs import XEdSigner
from .prekeys import KEY_TYPE_DJB
from .store import Device, SignedPreKey, Store

PLATFORM = "offline"


def add_offline_device(store: Store, phone: str) -> Device:
    """Register a companion of ``phone`` with a fresh identity and signed prekey."""
    identity = XEdSigner()
    prekey = (
        X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return store.add_device(
        phone,
        noise_pub=secrets.token_bytes(32),
        identity_pub=identity.public,
        registration_id=secrets.randbelow(16380) + 1,
        skey=SignedPreKey(1, prekey, identity.sign(KEY_TYPE_DJB + prekey)),
        platform=PLATFORM,
    )
