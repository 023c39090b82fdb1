"""Receipt routing (delivery, read, played, retry, ...) and acks back to their sender.

A receipt's ``to`` names the original sender: a device (delivery receipts) or the user
(read receipts, which then go to all of the sender's devices). The forwarded receipt's
``from`` is the receipt writer in the same addressing mode. In groups the receipt goes
to ``participant`` and keeps the group as ``from``.
"""

from __future__ import annotations

import logging

from .binary import Node
from .connection import Connection
from .jid import GROUP_SERVER, JID
from .network import Network, now

log = logging.getLogger(__name__)


def _ack(receipt: Node, to: JID) -> Node:
    attrs: dict = {"class": "receipt", "id": receipt.attr("id"), "from": to}
    if receipt.attr("type"):
        attrs["type"] = receipt.attr("type")
    return Node("ack", attrs)


def receipt_ids(receipt: Node) -> list[str]:
    """The message ids a receipt is about: ``id`` plus any ``<list><item id/></list>``."""
    ids = [receipt.attr("id")]
    listed = receipt.child("list")
    if listed is not None:
        ids += [item.attr("id") for item in listed.iter_children("item") if item.attr("id")]
    return ids


def _for_the_phone(receipt: Node, own_account: bool, target: JID) -> bool:
    """A ``sender``/``peer_msg`` receipt to the account's bare JID answers a message from
    the phone (device 0): the other companions never sent it, so it is not forwarded."""
    kind = receipt.attr("type")
    return own_account and not target.device and kind in ("sender", "peer_msg")


def handle_ack(net: Network, conn: Connection, ack: Node) -> None:
    """A client's ``<ack class=receipt|message>`` releases the stanza held for it."""
    kind, stanza_id = ack.attr("class"), ack.attr("id")
    if conn.jid is not None and kind in ("receipt", "message") and stanza_id:
        net.store.acknowledge(conn.phone, conn.device, kind, [stanza_id])


def handle_receipt(net: Network, conn: Connection, receipt: Node) -> None:
    to = receipt.jid_attr("to")
    if to is None or not receipt.attr("id"):
        log.warning("%r: receipt without to/id: %s", conn, receipt)
        return
    # Any receipt (delivery, retry, read...) shows the device has the message.
    net.store.acknowledge(conn.phone, conn.device, "message", receipt_ids(receipt))
    me = net.store.phone(conn.phone)
    assert me is not None
    attrs: dict = {"id": receipt.attr("id"), "t": now()}
    if receipt.attr("type"):
        attrs["type"] = receipt.attr("type")
    target = to
    if to.server == GROUP_SERVER:
        participant = receipt.jid_attr("participant")
        if participant is None:
            conn.send(_ack(receipt, to))
            return
        target = participant
        attrs["from"] = to
        attrs["participant"] = net.address(me, conn.device, participant.server)
    else:
        attrs["from"] = net.address(me, conn.device, to.server)
    if receipt.jid_attr("recipient") is not None:
        attrs["recipient"] = receipt.jid_attr("recipient")
    account = net.phone_for(target)
    if account is not None and _for_the_phone(receipt, account.phone == me.phone, target):
        conn.send(_ack(receipt, to))
        return
    if account is not None:
        forwarded = Node("receipt", attrs, receipt.content)
        if target.device:
            net.deliver(account.phone, target.device, forwarded)
        else:
            skip = conn.device if account.phone == me.phone else None
            net.deliver_to_user(account.phone, forwarded, skip=skip)
    conn.send(_ack(receipt, to))
