"""Voice calls from a sandbox phone: the offer every device of the callee rings with,
and the callee's ``<reject>``.

The offer is the stanza whatsmeow's ``handleCallEvent`` reads (``<call from platform
version notify t><offer call-id call-creator caller_pn>``, LID-addressed as WhatsApp
sends it now) and turns into ``events.CallOffer``. There is no media: the offer
carries no ``<enc>`` call key and nothing is relayed. A device that rejects
(whatsmeow's ``RejectCall``: ``<call to><reject call-id call-creator count="0"/></call>``)
gets its ``<ack class="call">``; the call is then over, and the caller's other online
devices are told with the same ``<reject>``. Calls live in memory only: a call does
not survive a sandbox restart, as it would not survive a dropped connection.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field

from .binary import Node
from .connection import Connection
from .jid import JID
from .network import Network, now
from .store import Phone

log = logging.getLogger(__name__)

#: What the offer says the caller runs (whatsmeow requires both attributes).
PLATFORM, VERSION = "android", "2.25.30.77"


@dataclass
class Call:
    call_id: str
    caller: str
    callee: str
    started: float = field(default_factory=time.time)
    state: str = "offered"
    rejected_by: str = ""

    def as_dict(self) -> dict[str, str | float]:
        return {
            "call_id": self.call_id,
            "from": self.caller,
            "to": self.callee,
            "state": self.state,
            "rejected_by": self.rejected_by,
        }


class Calls:
    """Calls between sandbox accounts, by call id."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.calls: dict[str, Call] = {}

    def offer(self, caller: Phone, callee: Phone) -> Call:
        call = Call(secrets.token_hex(16).upper(), caller.phone, callee.phone)
        self.calls[call.call_id] = call
        offer = Node(
            "offer",
            {
                "call-id": call.call_id,
                "call-creator": JID.lid(caller.lid),
                "caller_pn": JID.pn(caller.phone),
            },
            [
                Node("audio", {"enc": "opus", "rate": "16000"}),
                Node("audio", {"enc": "opus", "rate": "8000"}),
                Node("net", {"medium": "3"}),
            ],
        )
        stanza = Node(
            "call",
            {
                "from": JID.lid(caller.lid),
                "id": self.net.next_id(),
                "t": now(),
                "platform": PLATFORM,
                "version": VERSION,
                "notify": caller.push_name,
            },
            [offer],
        )
        self.net.deliver_to_user(callee.phone, stanza, queue=False)
        log.info("%s calls %s (call %s)", caller.phone, callee.phone, call.call_id)
        return call

    def handle_call(self, conn: Connection, node: Node) -> None:
        """A client's ``<call>``: acked; a ``<reject>`` of a known call ends it."""
        children = node.children()
        action = children[0] if children else None
        ack: dict[str, str | JID] = {"class": "call", "id": node.attr("id")}
        if action is not None:
            ack["type"] = action.tag
        to = node.jid_attr("to")
        if to is not None:
            ack["from"] = to
        conn.send(Node("ack", ack))
        call = self.calls.get(action.attr("call-id")) if action is not None else None
        if action is None or action.tag != "reject" or call is None:
            return
        if call.callee != conn.phone or call.state != "offered":
            return
        call.state, call.rejected_by = "rejected", str(JID.pn(conn.phone, conn.device))
        callee = self.net.store.phone(conn.phone)
        assert callee is not None
        reject = Node(
            "call",
            {"from": JID.lid(callee.lid), "id": self.net.next_id(), "t": now()},
            [Node("reject", dict(action.attrs))],
        )
        self.net.deliver_to_user(call.caller, reject, queue=False)
        log.info("call %s rejected by %s", call.call_id, call.rejected_by)
