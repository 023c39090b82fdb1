"""Login of a paired companion: authenticate, ``<success>``, then the offline backlog.

The handshake's client static key must equal the noise key recorded at pairing (that is
how the real server authenticates companions). The answers are chosen so that the
client never wipes its store by accident: only a device that was explicitly unlinked
gets ``<failure reason="401">``; anything the sandbox does not recognise gets ``503``,
which the client treats as "try again later".
"""

from __future__ import annotations

import logging

from .binary import Node, unmarshal
from .connection import Connection
from .jid import JID
from .network import MAX_REDELIVERIES, Network, now

log = logging.getLogger(__name__)

FAILURE_LOGGED_OUT = "401"
FAILURE_UNAVAILABLE = "503"


def login(net: Network, conn: Connection) -> None:
    """Log ``conn`` in, or send ``<failure>`` and let the client hang up."""
    phone_number = str(conn.payload.username)
    number = conn.payload.device
    device = net.store.device(phone_number, number)
    phone = net.store.phone(phone_number)
    if device is not None and device.unlinked:
        log.info("unlinked device %s:%d tried to log in: logging it out", phone_number, number)
        net.store.delete_device(phone_number, number)
        conn.end(Node("failure", {"reason": FAILURE_LOGGED_OUT, "location": "sim"}))
        return
    if device is None or phone is None or device.noise_pub != conn.client_static:
        log.warning("refusing login of unknown device %s:%d", phone_number, number)
        conn.end(Node("failure", {"reason": FAILURE_UNAVAILABLE, "location": "sim"}))
        return
    conn.jid = JID.pn(phone_number, number)
    conn.lid = JID.lid(phone.lid, number)
    previous = net.online.get((phone_number, number))
    net.online[(phone_number, number)] = conn
    if previous is not None and previous is not conn:
        key = (phone_number, number)
        net.replaced[key] = net.replaced.get(key, 0) + 1
        previous.end(Node("stream:error", {}, [Node("conflict", {"type": "replaced"})]))
    conn.send(
        Node(
            "success",
            {
                "t": now(),
                "lid": conn.lid,
                "location": "sim",
                "creation": str(device.created_at),
                "props": "1",
            },
        )
    )
    flush_offline(net, conn)
    log.info("device %s logged in", conn.jid)


def flush_offline(net: Network, conn: Connection) -> None:
    """Send what was queued while the device was away, then ``<ib><offline count/></ib>``.

    Messages and receipts stay queued until the client acknowledges them (see
    :meth:`Network.deliver`); everything else is forgotten once sent.
    """
    queued = net.store.queued(conn.phone, conn.device)
    for _seq, payload, _held in queued:
        node = unmarshal(payload)
        if node.tag == "message":
            node.attrs["offline"] = "1"
        conn.send(node)
    net.store.dequeue([seq for seq, _, held in queued if not held])
    net.store.count_attempt([seq for seq, _, held in queued if held], MAX_REDELIVERIES)
    conn.send(Node("ib", {}, [Node("offline", {"count": str(len(queued))})]))
