"""``usync`` queries: PN → LID resolution, device lists, status, contact checks.

whatsmeow looks each returned ``user`` up by the exact JID it asked for, so the reply
echoes every queried JID as a JID token. Unknown users come back without children
(the client then reports "no LID found" / no devices instead of hanging).
"""

from __future__ import annotations

from .binary import Node
from .connection import Connection
from .jid import JID
from .network import Network, iq_result
from .store import Phone


def _user_reply(net: Network, jid: JID, phone: Phone | None, queries: list[str]) -> Node:
    children: list[Node] = []
    if phone is not None:
        for query in queries:
            if query == "devices":
                devices = [Node("device", {"id": str(n)}) for n in net.device_numbers(phone.phone)]
                children.append(Node("devices", {}, [Node("device-list", {}, devices)]))
            elif query == "lid":
                children.append(Node("lid", {"val": JID.lid(phone.lid)}))
            elif query == "contact":
                children.append(Node("contact", {"type": "in"}, jid.user.encode()))
            elif query == "status":
                children.append(Node("status", {"t": str(phone.created_at)}, b""))
    elif "contact" in queries:
        children.append(Node("contact", {"type": "out"}, jid.user.encode()))
    return Node("user", {"jid": jid}, children)


def handle_usync(net: Network, conn: Connection, iq: Node) -> None:
    usync = iq.child("usync")
    if usync is None:
        conn.send(iq_result(iq))
        return
    query = usync.child("query")
    queries = [q.tag for q in query.children()] if query is not None else []
    users = []
    listed = usync.child("list")
    for user in listed.children() if listed is not None else []:
        jid = user.jid_attr("jid")
        if jid is None:
            contact = user.child("contact")
            number = contact.bytes_content().decode().lstrip("+") if contact else ""
            jid = JID.pn(number) if number.isdigit() else None
        if jid is None:
            continue
        users.append(_user_reply(net, jid, net.phone_for(jid), queries))
    attrs = {k: usync.attr(k) for k in ("sid", "mode", "context") if usync.attr(k)}
    conn.send(
        iq_result(
            iq, [Node("usync", {**attrs, "index": "0", "last": "true"}, [Node("list", {}, users)])]
        )
    )
