"""Group administration (``xmlns="w:g2"``): subject, description, locked, announcement,
join approval, invite links (info and join), join requests, leave, and the list of the
requester's groups.

Every change is stored, answered, and announced to the members with a
``<notification type="w:gp2">`` carrying the element whatsmeow's ``parseGroupChange``
reads (``<subject>``, ``<description>``, ``<locked/>``, ``<announcement v_id>``, ...), as
WhatsApp does. Rights are WhatsApp's: settings, invite links and join requests are for
admins (``403``; an invite link asked by a non-admin is ``401``); in a locked group only
admins change the subject and the description.
"""

from __future__ import annotations

import logging

from .binary import Node
from .connection import Connection
from .groups import group_node, member_group, notify_members
from .groupstore import new_invite_code
from .iq import IqDispatcher
from .jid import GROUP_SERVER, JID
from .network import Network, iq_error, iq_result, now
from .store import Phone

log = logging.getLogger(__name__)

#: Setting elements (tag → (column, value)) that only admins may send.
TOGGLES = {
    "locked": ("locked", True),
    "unlocked": ("locked", False),
    "announcement": ("announce", True),
    "not_announcement": ("announce", False),
}


def _actor(net: Network, conn: Connection) -> Phone:
    phone = net.store.phone(conn.phone)
    assert phone is not None
    return phone


def _is_admin(net: Network, gid: str, phone: str) -> bool:
    return dict(net.store.groups.members(gid)).get(phone, False)


def _editable_group(net: Network, conn: Connection, iq: Node, *, admin: bool) -> str | None:
    """The targeted group if the requester may change it (else answers with an error)."""
    gid = member_group(net, conn, iq)
    if gid is None:
        return None
    group = net.store.groups.group(gid)
    assert group is not None
    if (admin or group.locked) and not _is_admin(net, gid, conn.phone):
        conn.send(iq_error(iq, 403, "forbidden"))
        return None
    return gid


def _participant(phone: Phone) -> Node:
    return Node("participant", {"jid": JID.lid(phone.lid), "phone_number": JID.pn(phone.phone)})


def _done(conn: Connection, iq: Node, gid: str) -> None:
    conn.send(iq_result(iq, None, **{"from": JID(gid, GROUP_SERVER)}))


def handle_subject(net: Network, conn: Connection, iq: Node) -> None:
    gid = _editable_group(net, conn, iq, admin=False)
    if gid is None:
        return
    subject = iq.need("subject").bytes_content().decode()
    actor = _actor(net, conn)
    stamp = now()
    net.store.groups.update(gid, subject=subject, subject_at=int(stamp), subject_by=actor.phone)
    _done(conn, iq, gid)
    attrs: dict[str, str | JID] = {
        "subject": subject,
        "s_t": stamp,
        "s_o": JID.lid(actor.lid),
        "s_o_pn": JID.pn(actor.phone),
    }
    notify_members(net, gid, actor, Node("subject", attrs))


def handle_description(net: Network, conn: Connection, iq: Node) -> None:
    """A new description replaces the one named in ``prev`` (else 409, as WhatsApp)."""
    gid = _editable_group(net, conn, iq, admin=False)
    if gid is None:
        return
    group = net.store.groups.group(gid)
    assert group is not None
    description = iq.need("description")
    if description.attr("prev") != group.topic_id:
        conn.send(iq_error(iq, 409, "conflict"))
        return
    body = description.child("body")
    topic = body.bytes_content().decode() if body is not None else ""
    actor = _actor(net, conn)
    topic_id = description.attr("id")
    net.store.groups.update(
        gid, topic=topic, topic_id=topic_id, topic_at=int(now()), topic_by=actor.phone
    )
    _done(conn, iq, gid)
    content = [Node("body", {}, topic.encode())] if topic else [Node("delete", {})]
    notify_members(net, gid, actor, Node("description", {"id": topic_id}, content))


def handle_toggle(net: Network, conn: Connection, iq: Node) -> None:
    gid = _editable_group(net, conn, iq, admin=True)
    if gid is None:
        return
    tag = iq.children()[0].tag
    column, value = TOGGLES[tag]
    net.store.groups.update(gid, **{column: value})
    _done(conn, iq, gid)
    attrs: dict[str, str | JID] = {"v_id": now()} if column == "announce" else {}
    notify_members(net, gid, _actor(net, conn), Node(tag, attrs))


def handle_approval_mode(net: Network, conn: Connection, iq: Node) -> None:
    gid = _editable_group(net, conn, iq, admin=True)
    if gid is None:
        return
    join = iq.need("membership_approval_mode", "group_join")
    set_approval(net, gid, _actor(net, conn), join.attr("state") == "on")
    _done(conn, iq, gid)


def set_approval(net: Network, gid: str, actor: Phone, required: bool) -> None:
    """Switch join approval (also the sandbox API's way: neonize has no call for it)."""
    net.store.groups.update(gid, approval=required)
    state = Node("group_join", {"state": "on" if required else "off"})
    notify_members(net, gid, actor, Node("membership_approval_mode", {}, [state]))


def handle_invite(net: Network, conn: Connection, iq: Node) -> None:
    """``<invite>`` to a group: its link code (``set``: a new one); to ``g.us`` with a
    ``code``: the group's info (``get``) or joining it (``set``)."""
    to = iq.jid_attr("to")
    if to is not None and to.user == "":
        _by_code(net, conn, iq)
        return
    gid = member_group(net, conn, iq)
    if gid is None:
        return
    if not _is_admin(net, gid, conn.phone):
        conn.send(iq_error(iq, 401, "not-authorized"))
        return
    group = net.store.groups.group(gid)
    assert group is not None
    code = group.invite
    if iq.attr("type") == "set" or not code:
        code = new_invite_code()
        net.store.groups.update(gid, invite=code)
    conn.send(iq_result(iq, [Node("invite", {"code": code})], **{"from": JID(gid, GROUP_SERVER)}))


def _by_code(net: Network, conn: Connection, iq: Node) -> None:
    code = iq.need("invite").attr("code")
    group = net.store.groups.by_invite(code) if code else None
    if group is None:
        conn.send(iq_error(iq, 406, "not-acceptable"))
        return
    gid, jid = group.gid, JID(group.gid, GROUP_SERVER)
    if iq.attr("type") == "get":
        conn.send(iq_result(iq, [group_node(net, gid)], **{"from": JID("", GROUP_SERVER)}))
        return
    joiner = _actor(net, conn)
    members = dict(net.store.groups.members(gid))
    if joiner.phone in members:
        conn.send(iq_result(iq, [Node("group", {"jid": jid})]))
        return
    if group.approval:
        net.store.groups.request(gid, joiner.phone)
        conn.send(iq_result(iq, [Node("membership_approval_request", {"jid": jid})]))
        log.info("%r asked to join %s", conn, gid)
        return
    net.store.groups.add_members(gid, [joiner.phone])
    conn.send(iq_result(iq, [Node("group", {"jid": jid})]))
    # The joiner's devices learn the whole group (whatsmeow: JoinedGroup, reason "invite"),
    # the others that someone was added.
    notify_members(
        net,
        gid,
        joiner,
        Node("add", {"reason": "invite"}, [_participant(joiner)]),
        skip=joiner.phone,
    )
    joined = Node("create", {"reason": "invite"}, [group_node(net, gid)])
    notify_members(net, gid, joiner, joined, only=joiner.phone)
    log.info("%r joined %s with its invite link", conn, gid)


def handle_leave(net: Network, conn: Connection, iq: Node) -> None:
    leaver = _actor(net, conn)
    left = []
    for node in iq.need("leave").iter_children("group"):
        jid = node.jid_attr("id")
        gid = jid.user if jid is not None else ""
        if gid and leaver.phone in dict(net.store.groups.members(gid)):
            notify_members(net, gid, leaver, Node("remove", {}, [_participant(leaver)]))
            net.store.groups.remove_members(gid, [leaver.phone])
            left.append(Node("group", {"id": JID(gid, GROUP_SERVER)}))
    conn.send(iq_result(iq, [Node("leave", {}, left)], **{"from": JID("", GROUP_SERVER)}))


def handle_participating(net: Network, conn: Connection, iq: Node) -> None:
    groups = [group_node(net, gid) for gid in net.store.groups.of_member(conn.phone)]
    conn.send(iq_result(iq, [Node("groups", {}, groups)], **{"from": JID("", GROUP_SERVER)}))


def handle_requests(net: Network, conn: Connection, iq: Node) -> None:
    gid = _editable_group(net, conn, iq, admin=True)
    if gid is None:
        return
    requests = [
        Node("membership_approval_request", {"jid": JID.pn(phone), "request_time": str(at)})
        for phone, at in net.store.groups.requests(gid)
    ]
    listed = Node("membership_approval_requests", {}, requests)
    conn.send(iq_result(iq, [listed], **{"from": JID(gid, GROUP_SERVER)}))


def register_group_admin_routes(iqs: IqDispatcher) -> None:
    iqs.add("w:g2", "set", "subject", handle_subject)
    iqs.add("w:g2", "set", "description", handle_description)
    for tag in TOGGLES:
        iqs.add("w:g2", "set", tag, handle_toggle)
    iqs.add("w:g2", "set", "membership_approval_mode", handle_approval_mode)
    iqs.add("w:g2", "get", "invite", handle_invite)
    iqs.add("w:g2", "set", "invite", handle_invite)
    iqs.add("w:g2", "set", "leave", handle_leave)
    iqs.add("w:g2", "get", "participating", handle_participating)
    iqs.add("w:g2", "get", "membership_approval_requests", handle_requests)
