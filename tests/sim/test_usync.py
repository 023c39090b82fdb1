"""usync: every query shape whatsmeow sends gets a ``<user>`` back, as from WhatsApp.

The stanzas are built as whatsmeow's ``usync()`` builds them (user.go): ``IsOnWhatsApp``
asks by ``<contact>+PHONE@c.us</contact>`` with ``addressing_mode="lid"``, ``GetUserInfo``
by JID (with a ``tctoken``), ``GetUserDevices`` by PN or LID JID. A dropped user used to
surface as neonize's "Function returned nothing" (a 502 for ``/user/check``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gowa_py.sim.binary import Node
from gowa_py.sim.certs import XEdSigner, xeddsa_verify
from gowa_py.sim.iq import IqDispatcher
from gowa_py.sim.jid import JID, SERVER_JID
from gowa_py.sim.network import Network
from gowa_py.sim.pb import (
    ADVDeviceIdentity,
    ADVKeyIndexList,
    ADVSignedDeviceIdentity,
    ADVSignedDeviceIdentityHMAC,
    ADVSignedKeyIndexList,
)
from gowa_py.sim.phone import KEY_INDEX_LIST_SIGNATURE_PREFIX, PrimaryPhone
from gowa_py.sim.store import Phone, SignedPreKey, Store
from gowa_py.sim.usync import handle_usync
from tests.sim.test_iq import RecordingConnection

KNOWN, UNKNOWN, STRANGER_LID = "15550000701", "15550000799", "100000000000799"
INFO_QUERY = [
    Node("business", {}, [Node("verified_name")]),
    Node("status"),
    Node("picture"),
    Node("devices", {"version": "2"}),
    Node("lid"),
]


@pytest.fixture
def net(tmp_path: Path) -> Network:
    net = Network(Store(tmp_path / "sim.db"), XEdSigner())
    net.store.create_phone(KNOWN, "Known", b"\x01" * 32)
    net.store.add_device(
        KNOWN,
        noise_pub=b"\x02" * 32,
        identity_pub=b"\x03" * 32,
        registration_id=7,
        skey=SignedPreKey(1, b"\x04" * 32, b"\x05" * 64),
        platform="chrome",
    )
    return net


def known(net: Network) -> Phone:
    phone = net.store.phone(KNOWN)
    assert phone is not None
    return phone


def ask(net: Network, query: list[Node], users: list[Node]) -> list[Node]:
    iqs = IqDispatcher(net)
    iqs.add("usync", "get", "usync", handle_usync)
    conn = RecordingConnection(JID.pn("15550000700", 1))
    usync = Node(
        "usync",
        {"sid": "1", "mode": "query", "last": "true", "index": "0", "context": "interactive"},
        [Node("query", {}, query), Node("list", {}, users)],
    )
    attrs = {"id": "9", "xmlns": "usync", "type": "get", "to": SERVER_JID}
    iqs.dispatch(conn, Node("iq", attrs, [usync]))
    (reply,) = conn.sent
    listed = reply.path("usync", "list")
    assert listed is not None, reply
    return listed.children()


def test_is_on_whatsapp_by_number_answers_known_and_unknown(net: Network) -> None:
    query = [
        Node("contact", {"addressing_mode": "lid"}),
        Node("business", {}, [Node("verified_name")]),
        Node("disappearing_mode"),
        Node("username"),
    ]
    users = [
        Node("user", {}, [Node("contact", {}, f"+{KNOWN}@c.us".encode())]),
        Node("user", {}, [Node("contact", {}, f"+{UNKNOWN}@c.us".encode())]),
    ]
    found, missing = ask(net, query, users)
    assert found.attrs == {"jid": JID.lid(known(net).lid), "pn_jid": JID.pn(KNOWN)}
    contact = found.child("contact")
    assert contact is not None and contact.attrs == {"type": "in"}
    assert contact.bytes_content() == f"+{KNOWN}@c.us".encode()
    business = found.child("business")
    assert business is not None and business.child("verified_name") is None
    assert missing.attrs == {"jid": JID.pn(UNKNOWN)}
    contact = missing.child("contact")
    assert contact is not None and contact.attrs == {"type": "out"}

    (plain,) = ask(net, [Node("contact")], [Node("user", {}, [Node("contact", {}, KNOWN)])])
    assert plain.attrs == {"jid": JID.pn(KNOWN)}


def test_user_info_and_devices_by_pn_or_lid(net: Network) -> None:
    users = [
        Node("user", {"jid": JID.pn(KNOWN)}, [Node("tctoken", {}, b"token")]),
        Node("user", {"jid": JID.lid(STRANGER_LID)}),
        Node("user", {"jid": JID.pn(UNKNOWN)}),
    ]
    by_pn, stranger, unknown = ask(net, INFO_QUERY, users)
    assert by_pn.attrs == {"jid": JID.pn(KNOWN)}
    assert [c.tag for c in by_pn.children()] == ["business", "status", "picture", "devices", "lid"]
    devices = by_pn.path("devices", "device-list")
    assert devices is not None and [d.attr("id") for d in devices.children()] == ["1"]
    # a companion carries its key index: Baileys skips companions without one
    assert devices.children()[0].attrs == {"id": "1", "key-index": "1"}
    lid = by_pn.child("lid")
    assert lid is not None and lid.attrs == {"val": JID.lid(known(net).lid)}
    assert stranger.attrs == {"jid": JID.lid(STRANGER_LID)} and stranger.children() == []
    assert unknown.children() == []

    (by_lid,) = ask(
        net, [Node("devices", {"version": "2"})], [Node("user", {"jid": JID.lid(known(net).lid)})]
    )
    assert by_lid.attrs == {"jid": JID.lid(known(net).lid)}
    devices = by_lid.path("devices", "device-list")
    assert devices is not None and [d.attr("id") for d in devices.children()] == ["1"]


def test_device_list_carries_the_key_index_list_signed_by_the_phone(net: Network) -> None:
    """As from WhatsApp: beside the device list, the ADV key indexes the account's phone
    vouches for, signed with the account key over ``06 02 || details``; a client that checks
    it drops a companion whose key index is not in it."""
    phone = known(net)
    primary = PrimaryPhone(phone)
    second = net.store.add_device(
        KNOWN,
        noise_pub=b"\x06" * 32,
        identity_pub=b"\x07" * 32,
        registration_id=8,
        skey=SignedPreKey(1, b"\x04" * 32, b"\x05" * 64),
        platform="chrome",
    )
    net.store.delete_device(KNOWN, second.device)

    (user,) = ask(net, [Node("devices", {"version": "2"})], [Node("user", {"jid": JID.pn(KNOWN)})])
    devices = user.child("devices")
    assert devices is not None and [c.tag for c in devices.children()] == [
        "device-list",
        "key-index-list",
    ]
    node = devices.child("key-index-list")
    assert node is not None
    signed = ADVSignedKeyIndexList.FromString(node.bytes_content())
    message = KEY_INDEX_LIST_SIGNATURE_PREFIX + signed.details
    assert signed.accountSignatureKey == primary.signer.public
    assert xeddsa_verify(primary.signer.public, message, signed.accountSignature)
    assert not xeddsa_verify(
        primary.signer.public, b"\x06\x00" + signed.details, signed.accountSignature
    )
    details = ADVKeyIndexList.FromString(signed.details)
    # the phone (0) and the linked companion (1); 2 was given out, then removed
    assert list(details.validIndexes) == [0, 1] and details.currentIndex == 2
    assert int(node.attr("ts")) == details.timestamp >= phone.created_at
    # the same account raw id as in the device identity the phone signs for a companion
    container = ADVSignedDeviceIdentityHMAC.FromString(
        primary.link_companion(3, b"\x08" * 32, b"\x09" * 32)
    )
    identity = ADVDeviceIdentity.FromString(
        ADVSignedDeviceIdentity.FromString(container.details).details
    )
    assert identity.rawID == details.rawID
