"""The phone as a Signal endpoint (device 0): what it sends a companion it just linked.

A real phone shares the account's app-state sync key with each new companion in an
end-to-end encrypted peer message (``ProtocolMessage.APP_STATE_SYNC_KEY_SHARE``).
Without it whatsmeow cannot decrypt any app-state patch, and never even asks for them;
with it, whatsmeow stores the key and fetches every collection (``w:sync:app:state``).

Senders fetch device 0's prekey bundle like any device's (:func:`bundle_device`).
The phone's identity is its account key (as on a real phone: the ADV account signature
key is the primary device's identity), its key and registration id derive from the
phone's signing seed, so they need no storage and survive restarts.
"""

from __future__ import annotations

import hashlib
import secrets

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from .binary import Node
from .jid import JID
from .network import Network, now
from .noise import x25519_public
from .pb import (
    AppStateSyncKey,
    AppStateSyncKeyData,
    AppStateSyncKeyFingerprint,
    AppStateSyncKeyId,
    AppStateSyncKeyShare,
    Message,
    ProtocolMessage,
)
from .phone import PrimaryPhone
from .store import Device, Phone, SignedPreKey
from .x3dh import DJB_TYPE, Bundle, encrypt_prekey_message

APP_STATE_KEY_ID_LENGTH = 6


def _derive(phone: Phone, label: bytes) -> bytes:
    return hashlib.sha256(label + phone.signing_seed).digest()


def registration_id(phone: Phone) -> int:
    """The phone's Signal registration id (14 bits, never 0)."""
    return int.from_bytes(_derive(phone, b"registration")[:2], "big") % 16380 + 1


def signed_prekey(phone: Phone) -> SignedPreKey:
    """The phone's signed prekey (id 1), signed with its identity (the account key)."""
    primary = PrimaryPhone(phone)
    private = X25519PrivateKey.from_private_bytes(_derive(phone, b"signed prekey"))
    public = x25519_public(private)
    return SignedPreKey(1, public, primary.signer.sign(DJB_TYPE + public))


def bundle_device(phone: Phone) -> Device:
    """Device 0 as the key fetch serves it: identity, registration id, signed prekey.

    It has no one-time prekeys (senders then use the signed prekey alone, as libsignal
    allows) and receives nothing it must decrypt: what senders encrypt for it is accepted
    and dropped, like a phone that reads its messages on its own screen.
    """
    skey = signed_prekey(phone)
    return Device(
        phone=phone.phone,
        device=0,
        noise_pub=b"",
        identity_pub=PrimaryPhone(phone).signer.public,
        registration_id=registration_id(phone),
        skey_id=skey.key_id,
        skey_pub=skey.pub,
        skey_sig=skey.signature,
        platform="android",
        unlinked=False,
        created_at=phone.created_at,
    )


def app_state_key(phone: Phone) -> AppStateSyncKey:
    """The account's app-state sync key, as the phone shares it."""
    return AppStateSyncKey(
        keyID=AppStateSyncKeyId(
            keyID=_derive(phone, b"app-state key id")[:APP_STATE_KEY_ID_LENGTH]
        ),
        keyData=AppStateSyncKeyData(
            keyData=_derive(phone, b"app-state key"),
            fingerprint=AppStateSyncKeyFingerprint(rawID=1, currentIndex=0, deviceIndexes=[0]),
            timestamp=phone.created_at * 1000,
        ),
    )


def _pad(plaintext: bytes) -> bytes:
    """whatsmeow's message padding: 1-15 bytes, each holding the padding length."""
    count = secrets.randbelow(15) + 1
    return plaintext + bytes([count]) * count


def peer_message(net: Network, phone: Phone, device: Device, message: Message) -> Node:
    """``message`` from device 0 to ``device``, encrypted as a ``pkmsg``."""
    identity: X25519PrivateKey = PrimaryPhone(phone).identity_key()
    bundle = Bundle(
        registration_id=device.registration_id,
        identity=device.identity_pub,
        signed_prekey_id=device.skey_id,
        signed_prekey=device.skey_pub,
        prekey=net.store.take_prekey(phone.phone, device.device),
    )
    ciphertext = encrypt_prekey_message(
        identity, registration_id(phone), bundle, _pad(message.SerializeToString())
    )
    attrs: dict[str, str | JID] = {
        "from": JID.pn(phone.phone),
        "to": JID.pn(phone.phone, device.device),
        "recipient": JID.pn(phone.phone),
        "id": secrets.token_hex(8).upper(),
        "type": "text",
        "category": "peer",
        "t": now(),
        "notify": phone.push_name,
    }
    return Node("message", attrs, [Node("enc", {"v": "2", "type": "pkmsg"}, ciphertext)])


def share_app_state_key(net: Network, phone: Phone, device: Device) -> None:
    """Queue the key share for a companion that just linked (it gets it at its login)."""
    share = ProtocolMessage(
        type=ProtocolMessage.APP_STATE_SYNC_KEY_SHARE,
        appStateSyncKeyShare=AppStateSyncKeyShare(keys=[app_state_key(phone)]),
    )
    node = peer_message(net, phone, device, Message(protocolMessage=share))
    net.deliver(phone.phone, device.device, node)
