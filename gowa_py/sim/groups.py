"""Groups (``xmlns="w:g2"``): create, info, add/remove/promote/demote participants,
message fan-out.

Groups are LID-addressed (``addressing_mode="lid"``), like new WhatsApp groups. A group
message carries one ``skmsg`` (sender-key ciphertext) for everybody plus, in
``<participants>``, a ``pkmsg``/``msg`` with the sender-key distribution for devices that
do not have it yet. Every member device except the sending one gets the device's own
``enc`` (if any) followed by the ``skmsg``; ``participant`` names the sending device,
which is the address the receiver decrypts under. Membership changes are announced to
members with ``<notification type="w:gp2">`` so their clients refresh cached group data.
Only admins may promote or demote (others get 403, as from WhatsApp), and only admins
send in an announcement group (others' messages are acked with ``error="403"``).
Settings, invite links, join requests and leaving are in :mod:`.groupadmin`.
"""

from __future__ import annotations

import logging
import secrets

from .binary import Node
from .connection import Connection
from .iq import IqDispatcher
from .jid import GROUP_SERVER, JID, LID_SERVER
from .network import Network, iq_error, iq_result, now
from .routing import forwarded, message_ack, targets
from .store import Phone

log = logging.getLogger(__name__)

GROUP_ID_PREFIX = "120363"


def _member_node(net: Network, phone_number: str, admin: bool, creator: str) -> Node:
    phone = net.store.phone(phone_number)
    assert phone is not None
    attrs: dict = {"jid": JID.lid(phone.lid), "phone_number": JID.pn(phone.phone)}
    if admin:
        attrs["type"] = "superadmin" if phone.phone == creator else "admin"
    return Node("participant", attrs)


def group_node(net: Network, gid: str) -> Node:
    """The ``<group>`` element whatsmeow's ``parseGroupNode`` reads, settings included."""
    group = net.store.groups.group(gid)
    assert group is not None
    creator = net.store.phone(group.creator)
    assert creator is not None
    members = net.store.groups.members(gid)
    children = [_member_node(net, phone, admin, group.creator) for phone, admin in members]
    children.append(Node("member_add_mode", {}, b"all_member_add"))
    if group.topic:
        body = Node("body", {}, group.topic.encode())
        attrs = {"id": group.topic_id, "t": str(group.topic_at)}
        children.append(Node("description", {**attrs, **_by(net, group.topic_by)}, [body]))
    if group.locked:
        children.append(Node("locked", {}))
    if group.announce:
        children.append(Node("announcement", {}))
    if group.approval:
        join = Node("group_join", {"state": "on"})
        children.append(Node("membership_approval_mode", {}, [join]))
    return Node(
        "group",
        {
            "id": gid,
            "creator": JID.lid(creator.lid),
            "creator_pn": JID.pn(creator.phone),
            "creation": str(group.created_at),
            "subject": group.subject,
            "s_t": str(group.subject_at or group.created_at),
            **_setter(net, group.subject_by),
            "size": str(len(members)),
            "addressing_mode": "lid",
        },
        children,
    )


def _setter(net: Network, number: str) -> dict[str, JID]:
    """``s_o``/``s_o_pn``: who set the subject."""
    by = _by(net, number)
    return {"s_o": by["participant"], "s_o_pn": by["participant_pn"]} if by else {}


def _by(net: Network, number: str) -> dict[str, JID]:
    """``participant``/``participant_pn`` attributes naming who changed a setting."""
    phone = net.store.phone(number) if number else None
    if phone is None:
        return {}
    return {"participant": JID.lid(phone.lid), "participant_pn": JID.pn(phone.phone)}


def notify_members(
    net: Network,
    gid: str,
    actor: Phone,
    change: Node,
    *,
    skip: str | None = None,
    only: str | None = None,
) -> None:
    """A ``w:gp2`` notification of ``change`` (made by ``actor``) to every member device,
    but those of the account ``skip``, or only to those of the account ``only``."""
    notification = Node(
        "notification",
        {
            "from": JID(gid, GROUP_SERVER),
            "type": "w:gp2",
            "id": net.next_id(),
            "t": now(),
            "participant": JID.lid(actor.lid),
            "participant_pn": JID.pn(actor.phone),
            "notify": actor.push_name,
            "addressing_mode": "lid",
        },
        [change],
    )
    for phone, _admin in net.store.groups.members(gid):
        if phone != skip and only in (None, phone):
            net.deliver_to_user(phone, notification)


def _resolve(net: Network, nodes: list[Node]) -> tuple[list[Phone], list[Node]]:
    """Known participants, and ``<participant error=404>`` nodes for unknown ones."""
    known, unknown = [], []
    for node in nodes:
        jid = node.jid_attr("jid")
        phone = net.phone_for(jid) if jid is not None else None
        if phone is not None:
            known.append(phone)
        elif jid is not None:
            unknown.append(Node("participant", {"jid": jid, "error": "404"}))
    return known, unknown


def handle_create(net: Network, conn: Connection, iq: Node) -> None:
    create = iq.child("create")
    assert create is not None
    creator = net.store.phone(conn.phone)
    assert creator is not None
    members, unknown = _resolve(net, list(create.iter_children("participant")))
    gid = GROUP_ID_PREFIX + "".join(secrets.choice("0123456789") for _ in range(12))
    net.store.groups.create(gid, create.attr("subject"), creator.phone, [m.phone for m in members])
    info = group_node(net, gid)
    if unknown:
        info.content = [*info.children(), *unknown]
    conn.send(iq_result(iq, [info], **{"from": JID("", GROUP_SERVER)}))
    notify_members(
        net,
        gid,
        creator,
        Node("create", {"type": "new", "key": create.attr("key")}, [group_node(net, gid)]),
    )
    log.info("%r created group %s with %d members", conn, gid, len(members) + 1)


def member_group(net: Network, conn: Connection, iq: Node) -> str | None:
    """The group an iq targets, if it exists and the requester is a member (else answers)."""
    to = iq.jid_attr("to")
    gid = to.user if to is not None and to.server == GROUP_SERVER else ""
    if not gid or net.store.groups.group(gid) is None:
        conn.send(iq_error(iq, 404, "item-not-found"))
        return None
    if conn.phone not in {p for p, _ in net.store.groups.members(gid)}:
        conn.send(iq_error(iq, 403, "forbidden"))
        return None
    return gid


def handle_info(net: Network, conn: Connection, iq: Node) -> None:
    gid = member_group(net, conn, iq)
    if gid is not None:
        conn.send(iq_result(iq, [group_node(net, gid)], **{"from": JID(gid, GROUP_SERVER)}))


def handle_participants(net: Network, conn: Connection, iq: Node) -> None:
    gid = member_group(net, conn, iq)
    if gid is None:
        return
    action = iq.children()[0]
    actor = net.store.phone(conn.phone)
    assert actor is not None
    members = dict(net.store.groups.members(gid))
    if action.tag in ("promote", "demote") and not members.get(actor.phone):
        conn.send(iq_error(iq, 403, "forbidden"))
        return
    phones, unknown = _resolve(net, list(action.iter_children("participant")))
    if action.tag in ("promote", "demote"):
        unknown += [
            Node("participant", {"jid": JID.lid(p.lid), "error": "406"})
            for p in phones
            if p.phone not in members
        ]
        phones = [p for p in phones if p.phone in members]
    numbers = [p.phone for p in phones]
    if action.tag == "add":
        net.store.groups.add_members(gid, numbers)
    elif action.tag in ("promote", "demote"):
        net.store.groups.set_admins(gid, numbers, action.tag == "promote")
    changed = [
        Node("participant", {"jid": JID.lid(p.lid), "phone_number": JID.pn(p.phone)})
        for p in phones
    ]
    conn.send(
        iq_result(iq, [Node(action.tag, {}, changed + unknown)], **{"from": JID(gid, GROUP_SERVER)})
    )
    if changed:
        notify_members(net, gid, actor, Node(action.tag, {}, changed))
    if action.tag == "remove":
        net.store.groups.remove_members(gid, numbers)


def route_group_message(net: Network, conn: Connection, msg: Node) -> None:
    to = msg.jid_attr("to")
    assert to is not None
    admins = dict(net.store.groups.members(to.user))
    members = list(admins)
    group = net.store.groups.group(to.user)
    if conn.phone not in admins or (group and group.announce and not admins[conn.phone]):
        # Not a member, or a member who is not an admin of an announcement group.
        conn.send(message_ack(msg, error="403"))
        return
    sender = net.store.phone(conn.phone)
    assert sender is not None
    per_device: dict[tuple[str, int], list[Node]] = {}
    retry_target = msg.jid_attr("participant")
    if msg.child("participants") is None and retry_target is not None:
        # A retry resend: one bare <enc> for the device that asked for it.
        account = net.phone_for(retry_target)
        if account is not None:
            per_device[(account.phone, retry_target.device)] = list(msg.iter_children("enc"))
        shared: list[Node] = []
    else:
        for device_jid, encs in targets(msg):
            account = net.phone_for(device_jid)
            if account is not None:
                per_device[(account.phone, device_jid.device)] = encs
        shared = [e for e in msg.iter_children("enc") if e.attr("type") == "skmsg"]
    identity = msg.child("device-identity")
    extra: dict[str, str | JID] = {
        "participant": JID.lid(sender.lid, conn.device),
        "participant_pn": JID.pn(sender.phone),
        "addressing_mode": LID_SERVER,
    }
    for phone in members:
        for device in net.device_numbers(phone):
            if (phone, device) == (conn.phone, conn.device):
                continue
            own = per_device.get((phone, device), [])
            payload = own + shared
            if identity is not None and any(e.attr("type") == "pkmsg" for e in own):
                payload.append(identity)
            if payload:
                net.deliver(phone, device, forwarded(msg, to, sender.push_name, payload, **extra))
    conn.send(message_ack(msg))


def register_group_routes(iqs: IqDispatcher) -> None:
    iqs.add("w:g2", "set", "create", handle_create)
    iqs.add("w:g2", "get", "query", handle_info)
    iqs.add("w:g2", "set", "add", handle_participants)
    iqs.add("w:g2", "set", "remove", handle_participants)
    iqs.add("w:g2", "set", "promote", handle_participants)
    iqs.add("w:g2", "set", "demote", handle_participants)
