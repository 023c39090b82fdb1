"""Prekey service (``xmlns="encrypt"``): count, upload, and bundle fetch.

The sandbox stores what each device uploads and hands it out to senders, one-time
prekeys once each; the phone's own bundle (device 0) comes from :mod:`.devicezero`.
Byte fields must keep their exact sizes (registration 4, id 3, value 32, signature 64)
or the client rejects the bundle.
"""

from __future__ import annotations

import logging

from .binary import Node
from .connection import Connection
from .devicezero import bundle_device
from .jid import SERVER_JID
from .network import Network, iq_error, iq_result, now
from .store import SignedPreKey

log = logging.getLogger(__name__)

#: Below this many one-time prekeys the sandbox asks the owner for more, as WhatsApp does.
LOW_PREKEY_COUNT = 5
KEY_TYPE_DJB = b"\x05"


def handle_count(net: Network, conn: Connection, iq: Node) -> None:
    count = net.store.prekey_count(conn.phone, conn.device)
    conn.send(iq_result(iq, [Node("count", {"value": str(count)})]))


def _key_id(node: Node | None) -> int:
    if node is None or len(node.bytes_content()) != 3:
        raise ValueError("prekey id must be 3 bytes")
    return int.from_bytes(node.bytes_content(), "big")


def handle_upload(net: Network, conn: Connection, iq: Node) -> None:
    try:
        keys = [
            (_key_id(k.child("id")), k.need("value").bytes_content())
            for k in iq.need("list").iter_children("key")
        ]
        skey = iq.child("skey")
        registration, identity = iq.child("registration"), iq.child("identity")
        if skey is None or registration is None or identity is None:
            raise ValueError("upload without registration, identity or skey")
        signed = SignedPreKey(
            _key_id(skey.child("id")),
            skey.need("value").bytes_content(),
            skey.need("signature").bytes_content(),
        )
    except (ValueError, AttributeError) as exc:
        log.warning("%r: bad prekey upload: %s", conn, exc)
        conn.send(iq_error(iq, 400, "bad-request"))
        return
    net.store.update_identity(
        conn.phone,
        conn.device,
        identity_pub=identity.bytes_content(),
        registration_id=int.from_bytes(registration.bytes_content(), "big"),
        skey=signed,
    )
    net.store.add_prekeys(conn.phone, conn.device, keys)
    log.info("%r uploaded %d prekeys", conn, len(keys))
    conn.send(iq_result(iq))


def _bundle(net: Network, user: Node) -> Node:
    jid = user.jid_attr("jid")
    phone = net.phone_for(jid) if jid is not None else None
    device = None
    if phone is not None and jid is not None:
        device = (
            bundle_device(phone) if jid.device == 0 else net.store.device(phone.phone, jid.device)
        )
    if jid is None or phone is None or device is None or device.unlinked:
        return Node(
            "user",
            {"jid": jid} if jid else {},
            [Node("error", {"code": "404", "text": "item-not-found"})],
        )
    children = [
        Node("registration", {}, device.registration_id.to_bytes(4, "big")),
        Node("type", {}, KEY_TYPE_DJB),
        Node("identity", {}, device.identity_pub),
        Node(
            "skey",
            {},
            [
                Node("id", {}, device.skey_id.to_bytes(3, "big")),
                Node("value", {}, device.skey_pub),
                Node("signature", {}, device.skey_sig),
            ],
        ),
    ]
    if device.device == 0:
        return Node("user", {"jid": jid}, children)
    prekey = net.store.take_prekey(phone.phone, device.device)
    if prekey is not None:
        key_id, pub = prekey
        children.append(
            Node("key", {}, [Node("id", {}, key_id.to_bytes(3, "big")), Node("value", {}, pub)])
        )
    if net.store.prekey_count(phone.phone, device.device) < LOW_PREKEY_COUNT:
        net.deliver(
            phone.phone,
            device.device,
            Node(
                "notification",
                {"from": SERVER_JID, "type": "encrypt", "id": net.next_id(), "t": now()},
                [Node("count", {"value": str(net.store.prekey_count(phone.phone, device.device))})],
            ),
            queue=False,
        )
    return Node("user", {"jid": jid}, children)


def handle_fetch(net: Network, conn: Connection, iq: Node) -> None:
    users = [_bundle(net, user) for user in iq.need("key").iter_children("user")]
    conn.send(iq_result(iq, [Node("list", {}, users)]))
