"""The phone's own app-state changes: it pins, archives or mutes a chat or saves a contact's
name, as its user would.

A real phone encodes such a change as an app-state patch, with the account's app-state
key (the one it shares with each companion, :func:`.devicezero.app_state_key`), and
uploads it like any device; the server numbers it and tells the other devices, which
fetch it, check its MACs and apply it. The phone does the same here, in whatsmeow's
encoding (its ``appstate`` package): each mutation is ``SyncActionData`` encrypted with
AES-256-CBC, a value MAC (HMAC-SHA512 over operation, key id and ciphertext) and an index
MAC (HMAC-SHA256 over the JSON index); the patch carries the snapshot MAC over the
collection's LTHash after the patch and its version, and the patch MAC over that, the
value MACs, the version and the collection name. The LTHash is replayed from the stored
patches of the collection (whoever sent them: their MACs are not encrypted), so the
phone keeps no state of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .binary import Node
from .devicezero import app_state_key
from .jid import SERVER_JID
from .network import Network, now
from .pb import (
    KeyId,
    SyncActionData,
    SyncActionValue,
    SyncdIndex,
    SyncdMutation,
    SyncdPatch,
    SyncdRecord,
    SyncdValue,
    SyncdVersion,
)
from .store import Phone

LTHASH_SIZE = 128


@dataclass(frozen=True)
class Change:
    """One chat setting as whatsmeow's ``appstate.Build*`` writes it."""

    collection: str
    index: list[str]
    version: int
    value: SyncActionValue


def archive(chat: str, archived: bool) -> Change:
    action = SyncActionValue(archiveChatAction={"archived": archived})
    return Change("regular_low", ["archive", chat], 3, action)


def pin(chat: str, pinned: bool) -> Change:
    return Change("regular_low", ["pin_v1", chat], 5, SyncActionValue(pinAction={"pinned": pinned}))


def mute(chat: str, muted: bool) -> Change:
    action = SyncActionValue(muteAction={"muted": muted, "muteEndTimestamp": -1 if muted else 0})
    return Change("regular_high", ["mute", chat], 2, action)


def contact(jid: str, full_name: str, first_name: str) -> Change:
    action = SyncActionValue(contactAction={"fullName": full_name, "firstName": first_name})
    return Change("critical_unblock_low", ["contact", jid], 2, action)


def _hkdf(key: bytes, info: bytes, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, salt=None, info=info).derive(key)


def _hmac256(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def _lthash(base: bytearray, value_mac: bytes, sign: int) -> None:
    """Add (``sign`` 1) or subtract (-1) one value MAC, 16-bit little-endian lanes."""
    item = _hkdf(value_mac, b"WhatsApp Patch Integrity", LTHASH_SIZE)
    for i in range(0, LTHASH_SIZE, 2):
        lane = int.from_bytes(base[i : i + 2], "little") + sign * int.from_bytes(
            item[i : i + 2], "little"
        )
        base[i : i + 2] = (lane & 0xFFFF).to_bytes(2, "little")


def _apply(state: bytearray, macs: dict[bytes, bytes], mutations: list[SyncdMutation]) -> None:
    """Fold mutations into a collection's LTHash and index → value MAC map."""
    for mutation in mutations:
        index_mac = mutation.record.index.blob
        previous = macs.pop(index_mac, None)
        if previous is not None:
            _lthash(state, previous, -1)
        if mutation.operation == SyncdMutation.SET:
            value_mac = mutation.record.value.blob[-32:]
            _lthash(state, value_mac, 1)
            macs[index_mac] = value_mac


def encode(net: Network, phone: Phone, change: Change, timestamp_ms: int) -> tuple[int, bytes]:
    """The next patch of the change's collection: its version and serialized ``SyncdPatch``."""
    key = app_state_key(phone)
    key_id = key.keyID.keyID
    expanded = _hkdf(key.keyData.keyData, b"WhatsApp Mutation Keys", 160)
    index_key, encryption_key, value_key = expanded[:32], expanded[32:64], expanded[64:96]
    snapshot_key, patch_key = expanded[96:128], expanded[128:160]

    state, macs = bytearray(LTHASH_SIZE), dict[bytes, bytes]()
    for raw in net.store.app_state.since(phone.phone, change.collection, 0):
        _apply(state, macs, list(SyncdPatch.FromString(raw).mutations))
    version = net.store.app_state.version(phone.phone, change.collection) + 1

    index = json.dumps(change.index, separators=(",", ":")).encode()
    value = SyncActionValue()
    value.CopyFrom(change.value)
    value.timestamp = timestamp_ms
    plaintext = SyncActionData(
        index=index, value=value, padding=b"", version=change.version
    ).SerializeToString()
    padder = padding.PKCS7(128).padder()
    iv = secrets.token_bytes(16)
    encryptor = Cipher(algorithms.AES(encryption_key), modes.CBC(iv)).encryptor()
    content = iv + encryptor.update(padder.update(plaintext) + padder.finalize())
    content += encryptor.finalize()
    operation = SyncdMutation.SET
    value_mac = hmac.new(
        value_key,
        bytes([operation + 1]) + key_id + content + (len(key_id) + 1).to_bytes(8, "big"),
        hashlib.sha512,
    ).digest()[:32]
    mutation = SyncdMutation(
        operation=operation,
        record=SyncdRecord(
            index=SyncdIndex(blob=_hmac256(index_key, index)),
            value=SyncdValue(blob=content + value_mac),
            keyID=KeyId(ID=key_id),
        ),
    )
    _apply(state, macs, [mutation])
    name = change.collection.encode()
    snapshot_mac = _hmac256(snapshot_key, bytes(state), version.to_bytes(8, "big"), name)
    patch_mac = _hmac256(patch_key, snapshot_mac, value_mac, version.to_bytes(8, "big"), name)
    patch = SyncdPatch(
        version=SyncdVersion(version=version),
        mutations=[mutation],
        snapshotMAC=snapshot_mac,
        patchMAC=patch_mac,
        keyID=KeyId(ID=key_id),
    )
    return version, patch.SerializeToString()


def upload(net: Network, phone: Phone, change: Change) -> int:
    """The phone makes the change: stored as the collection's next patch, companions told."""
    version, raw = encode(net, phone, change, int(time.time() * 1000))
    net.store.app_state.add(phone.phone, change.collection, version, raw)
    notice = Node(
        "notification",
        {"from": SERVER_JID, "type": "server_sync", "id": net.next_id(), "t": now()},
        [Node("collection", {"name": change.collection, "version": str(version)})],
    )
    net.deliver_to_user(phone.phone, notice, skip=0)
    return version
