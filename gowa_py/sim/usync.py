"""``usync`` queries: contact checks, PN → LID resolution, device lists, status, pictures.

whatsmeow asks in two forms: ``<user jid="…"/>`` (a PN or LID JID: devices, user info)
and ``<user><contact>+PHONE@c.us</contact></user>`` (``IsOnWhatsApp``). Like WhatsApp,
every queried user gets a ``<user>`` back: the JID asked for (a contact query answers
with the account's JID, its LID when the query asks for ``addressing_mode="lid"``, with
the number in ``pn_jid``), and ``<contact type="out">`` for a number that has no
account, so a client learns "not on WhatsApp" instead of getting nothing.
"""

from __future__ import annotations

from .binary import Node
from .connection import Connection
from .jid import JID
from .network import Network, iq_result
from .phone import PrimaryPhone
from .store import Phone

LEGACY_SUFFIX = "@c.us"


def _query_number(user: Node) -> tuple[str, bytes] | None:
    """The digits and the raw text of a ``<contact>`` query (``+1555…@c.us``, ``1555…``)."""
    contact = user.child("contact")
    if contact is None:
        return None
    raw = contact.bytes_content()
    number = raw.decode(errors="replace").removesuffix(LEGACY_SUFFIX).lstrip("+")
    return (number, raw) if number.isdigit() else None


def _device(number: int) -> Node:
    """A device-list entry; a companion carries its ADV key index (pairing makes it the
    device number), which Baileys requires before it encrypts for a companion."""
    if number == 0:
        return Node("device", {"id": "0"})
    return Node("device", {"id": str(number), "key-index": str(number)})


def _devices(net: Network, phone: Phone) -> Node:
    """The account's device list and, as WhatsApp sends beside it, the key-index list its
    phone signed: which ADV key indexes are valid (a client can drop a companion whose
    signed identity carries another), the last one given out, and when it changed."""
    devices = net.store.devices(phone.phone)
    timestamp = max([phone.created_at, *(d.created_at for d in devices)])
    signed = PrimaryPhone(phone).key_index_list(
        valid=[0, *(d.device for d in devices)],
        current=net.store.last_device_number(phone.phone),
        timestamp=timestamp,
    )
    return Node(
        "devices",
        {},
        [
            Node("device-list", {}, [_device(d.device) for d in devices]),
            Node("key-index-list", {"ts": str(timestamp)}, signed),
        ],
    )


def _facts(net: Network, jid: JID, phone: Phone, query: Node) -> list[Node]:
    """One child per protocol of the query that the sandbox knows about this account."""
    children: list[Node] = []
    for protocol in query.children():
        tag = protocol.tag
        if tag == "devices":
            children.append(_devices(net, phone))
        elif tag == "lid":
            children.append(Node("lid", {"val": JID.lid(phone.lid)}))
        elif tag == "status":
            children.append(Node("status", {"t": str(phone.created_at)}, b""))
        elif tag == "business":
            children.append(Node("business"))
        elif tag == "picture":
            picture = net.store.picture(phone.phone)
            children.append(Node("picture", {"id": picture[0]} if picture else {}))
        elif tag == "disappearing_mode":
            children.append(Node("disappearing_mode", {"duration": "0", "t": "0"}))
    return children


def _by_jid(net: Network, jid: JID, query: Node) -> Node:
    phone = net.phone_for(jid)
    children = [] if phone is None else _facts(net, jid, phone, query)
    if phone is not None and query.child("contact") is not None:
        children.insert(0, Node("contact", {"type": "in"}, jid.user.encode()))
    return Node("user", {"jid": jid}, children)


def _by_number(net: Network, number: str, raw: bytes, query: Node) -> Node:
    pn = JID.pn(number)
    phone = net.phone_for(pn)
    if phone is None:
        return Node("user", {"jid": pn}, [Node("contact", {"type": "out"}, raw)])
    protocol = query.child("contact")
    lid_mode = protocol is not None and protocol.attr("addressing_mode") == "lid"
    attrs: dict[str, str | JID] = (
        {"jid": JID.lid(phone.lid), "pn_jid": pn} if lid_mode else {"jid": pn}
    )
    children = [Node("contact", {"type": "in"}, raw), *_facts(net, pn, phone, query)]
    return Node("user", attrs, children)


def handle_usync(net: Network, conn: Connection, iq: Node) -> None:
    usync = iq.child("usync")
    if usync is None:
        conn.send(iq_result(iq))
        return
    query = usync.child("query") or Node("query", {}, [])
    users = []
    listed = usync.child("list")
    for user in listed.children() if listed is not None else []:
        jid = user.jid_attr("jid")
        if jid is not None:
            users.append(_by_jid(net, jid.user_jid(), query))
        elif (asked := _query_number(user)) is not None:
            users.append(_by_number(net, *asked, query))
    attrs = {k: usync.attr(k) for k in ("sid", "mode", "context") if usync.attr(k)}
    conn.send(
        iq_result(
            iq, [Node("usync", {**attrs, "index": "0", "last": "true"}, [Node("list", {}, users)])]
        )
    )
