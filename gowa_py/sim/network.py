"""Shared state of the sandbox network: who is online, who exists, and delivery.

Handlers (pairing, login, iq, routing, receipts, presence, groups) receive the
:class:`Network` and the :class:`~.connection.Connection` a stanza came from.
Delivery goes to the live connection of a device or, for stanzas that must survive,
into the SQLite offline queue that :mod:`.login` flushes at the next login.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from .binary import Node, marshal
from .certs import XEdSigner, noise_cert_chain
from .connection import Connection
from .jid import JID, LID_SERVER, SERVER_JID, USER_SERVER
from .noise import x25519_public
from .store import Phone, Store

log = logging.getLogger(__name__)

#: Stanzas kept in the queue until the receiving device acknowledges them.
HELD_UNTIL_ACKED = frozenset({"message", "receipt"})
#: Logins after which a held stanza the client never acknowledges is dropped.
MAX_REDELIVERIES = 20


@dataclass
class Faults:
    """Fault injection switched through ``POST /sim/faults``."""

    delay_ms: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"delay_ms": self.delay_ms}


def now() -> str:
    """Server timestamps are decimal unix seconds, always sent as strings."""
    return str(int(time.time()))


def iq_result(request: Node, content: list[Node] | None = None, **attrs: str | JID) -> Node:
    return Node(
        "iq", {"from": SERVER_JID, "type": "result", "id": request.attr("id"), **attrs}, content
    )


def iq_error(request: Node, code: int, text: str) -> Node:
    return Node(
        "iq",
        {"from": SERVER_JID, "type": "error", "id": request.attr("id")},
        [Node("error", {"code": str(code), "text": text})],
    )


class Network:
    """Everything the handlers share; one per running sandbox."""

    def __init__(self, store: Store, root: XEdSigner) -> None:
        self.store = store
        self.root = root
        self.faults = Faults()
        self.noise_key = X25519PrivateKey.generate()
        self.cert_chain = noise_cert_chain(root, XEdSigner(), x25519_public(self.noise_key))
        #: Logged-in connections by (phone, device).
        self.online: dict[tuple[str, int], Connection] = {}
        #: How often a device's login replaced a connection still logged in as it (the
        #: device run twice: WhatsApp ends the older one with a ``conflict``).
        self.replaced: dict[tuple[str, int], int] = {}
        #: App-state collections each device fetched (``appstate.handle_sync``).
        self.app_state_fetches: dict[tuple[str, int], list[str]] = {}
        #: Every connection, including ones still pairing.
        self.connections: set[Connection] = set()
        self._ids = itertools.count(1)
        #: Message ids a hostile client chose (``POST /sim/phones/{p}/send-document``), by
        #: (sender, recipient) phone: the next message between them carries it instead of
        #: the id its whatsmeow generated.
        self.chosen_ids: dict[tuple[str, str], str] = {}

    def next_id(self) -> str:
        """Server-chosen stanza id; the format cannot collide with whatsmeow's ``a.b-n`` ids."""
        return f"sim{next(self._ids)}"

    # -- addressing

    def phone_for(self, jid: JID) -> Phone | None:
        """The account behind a PN or LID JID (any device)."""
        if jid.server == USER_SERVER:
            return self.store.phone(jid.user)
        if jid.server == LID_SERVER:
            return self.store.phone_by_lid(jid.user)
        return None

    @staticmethod
    def address(phone: Phone, device: int, server: str) -> JID:
        """The phone's JID for ``device`` in the same addressing mode (PN or LID) as ``server``."""
        if server == LID_SERVER:
            return JID.lid(phone.lid, device)
        return JID.pn(phone.phone, device)

    def device_numbers(self, phone: str) -> list[int]:
        return [d.device for d in self.store.devices(phone)]

    # -- delivery

    def deliver(self, phone: str, device: int, node: Node, *, queue: bool = True) -> None:
        """Send to a device now, or keep it for the device's next login.

        Messages and receipts are held until the device acknowledges them (a receipt for
        a message, an ``<ack>`` for a receipt), as WhatsApp's servers do: a client that
        dies or drops its socket before handling a stanza gets it again at its next
        login. Ephemeral stanzas (chat states, notifications that only matter to a
        running client) pass ``queue=False`` and are dropped for offline devices.
        """
        conn = self.online.get((phone, device))
        online = conn is not None and not conn.closed
        held = node.tag in HELD_UNTIL_ACKED and bool(node.attr("id"))
        if (held or (queue and not online)) and self.store.device(phone, device) is not None:
            stanza_id = node.attr("id") if held else ""
            self.store.enqueue(phone, device, marshal(node), node.tag if held else "", stanza_id)
        if online:
            assert conn is not None
            conn.send(node)

    def deliver_to_user(
        self, phone: str, node: Node, *, skip: int | None = None, queue: bool = True
    ) -> None:
        for device in self.device_numbers(phone):
            if device != skip:
                self.deliver(phone, device, node, queue=queue)

    def announce_devices(self, phone: Phone) -> None:
        """Tell online clients that ``phone``'s device list changed.

        Clients cache device lists for the life of the process; ``<update/>`` makes
        whatsmeow drop the cached list (by PN and by LID) and fetch it again on next use.
        """
        for conn in list(self.online.values()):
            for jid in (JID.lid(phone.lid), JID.pn(phone.phone)):
                conn.send(
                    Node(
                        "notification",
                        {"from": jid, "type": "devices", "id": self.next_id(), "t": now()},
                        [Node("update", {})],
                    )
                )

    def unlink(self, phone: str, device: int) -> bool:
        """Remove a linked companion, logging it out now or at its next connection."""
        record = self.store.device(phone, device)
        if record is None or record.unlinked:
            return False
        conn = self.online.pop((phone, device), None)
        if conn is not None and not conn.closed:
            self.store.delete_device(phone, device)
            conflict = Node("conflict", {"type": "device_removed"})
            conn.end(Node("stream:error", {"code": "401"}, [conflict]))
        else:
            self.store.mark_unlinked(phone, device)
        account = self.store.phone(phone)
        assert account is not None
        self.announce_devices(account)
        log.info("device %s:%d unlinked", phone, device)
        return True
