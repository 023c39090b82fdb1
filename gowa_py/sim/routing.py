"""Message routing: fan encrypted payloads out to recipient devices, ack the sender.

A client sends one ``<message>`` with a ``<participants>`` list holding one ``<enc>`` per
target device (the recipient's devices and the sender's own other devices), or, for a
retry resend, a bare ``<enc>`` addressed to a single device. Each target device gets
its own ``<message>`` whose ``from`` is the sender's device JID in the addressing mode
the sender used (LID for modern whatsmeow) — the recipient decrypts under that address.
Copies for the sender's own devices carry ``recipient`` so they surface as "from me".
Offline devices get the stanza from the SQLite queue when they next log in. A message id
chosen through the API (a hostile peer's, see ``Network.chosen_ids``) replaces the sender's
on the recipient's copies.
"""

from __future__ import annotations

import logging

from .binary import Node
from .connection import Connection
from .jid import JID, LID_SERVER, USER_SERVER
from .network import Network, now

log = logging.getLogger(__name__)

#: Children the real server consumes instead of forwarding.
SERVER_ONLY_CHILDREN = {"participants", "bot", "meta", "tctoken", "cstoken", "reporting"}
#: Children that are re-attached per target rather than copied.
PER_TARGET_CHILDREN = {"enc", "device-identity"}
FORWARDED_ATTRS = ("type", "edit", "category", "verified_name", "push_priority")


def message_ack(msg: Node, **extra: str) -> Node:
    attrs: dict = {"class": "message", "id": msg.attr("id"), "t": now(), **extra}
    if msg.jid_attr("to") is not None:
        attrs["from"] = msg.jid_attr("to")
    return Node("ack", attrs)


def forwarded(
    msg: Node, sender: JID, push_name: str, payload: list[Node], **extra: str | JID
) -> Node:
    """The ``<message>`` a target device receives."""
    attrs: dict = {"from": sender, "id": msg.attr("id"), "t": now(), "notify": push_name}
    for key in FORWARDED_ATTRS:
        if msg.attr(key):
            attrs[key] = msg.attr(key)
    attrs.update(extra)
    extras = [c for c in msg.children() if c.tag not in SERVER_ONLY_CHILDREN | PER_TARGET_CHILDREN]
    return Node("message", attrs, payload + extras)


def targets(msg: Node) -> list[tuple[JID, list[Node]]]:
    """(device JID, enc nodes) pairs of a message, from ``participants`` or a bare ``enc``."""
    participants = msg.child("participants")
    if participants is not None:
        return [
            (jid, list(to.iter_children("enc")))
            for to in participants.iter_children("to")
            if (jid := to.jid_attr("jid")) is not None
        ]
    bare = list(msg.iter_children("enc"))
    to = msg.jid_attr("to")
    return [(to, bare)] if bare and to is not None else []


def handle_message(net: Network, conn: Connection, msg: Node) -> None:
    to = msg.jid_attr("to")
    if to is None or not msg.attr("id"):
        conn.send(message_ack(msg, error="400"))
        return
    if to.server not in (USER_SERVER, LID_SERVER):
        log.warning("%r: cannot route message to %s", conn, to)
        conn.send(message_ack(msg, error="404"))
        return
    sender = net.store.phone(conn.phone)
    assert sender is not None
    sender_jid = net.address(sender, conn.device, to.server)
    identity = msg.child("device-identity")
    recipient = net.phone_for(to)
    chosen = net.chosen_ids.pop((sender.phone, recipient.phone), None) if recipient else None
    for device_jid, encs in targets(msg):
        account = net.phone_for(device_jid)
        if account is None or not encs:
            continue
        extra: dict = {}
        if account.phone == sender.phone:
            if device_jid.device == conn.device:
                continue
            extra["recipient"] = to.user_jid()
            if msg.jid_attr("peer_recipient_pn") is not None:
                extra["peer_recipient_pn"] = msg.jid_attr("peer_recipient_pn")
        elif to.server == LID_SERVER:
            extra["sender_pn"] = JID.pn(sender.phone)
        if chosen is not None and account.phone != sender.phone:
            extra["id"] = chosen
        payload = list(encs)
        if identity is not None and any(e.attr("type") == "pkmsg" for e in encs):
            payload.append(identity)
        node = forwarded(msg, sender_jid, sender.push_name, payload, **extra)
        net.deliver(account.phone, device_jid.device, node)
    if net.phone_for(to) is None:
        log.info("%r: message %s to unknown user %s", conn, msg.attr("id"), to)
    conn.send(message_ack(msg))
