"""Profile pictures and group photos (``xmlns="w:profile:picture"``).

A picture is stored per account (phone number) or group and answered to a ``get`` with
its id, a ``pps.whatsapp.net`` URL and direct path (whatsmeow's ``ProfilePictureInfo``);
the picture bytes themselves are not downloadable (the sandbox does not serve
``pps.whatsapp.net``). A ``set`` without ``target`` is the requester's own picture, with
a group ``target`` the group's photo (members only; admins only when the group is
locked); a ``set`` without content removes it, one that is not a JPEG is refused (406), as
WhatsApp refuses it.
"""

from __future__ import annotations

from .binary import Node
from .connection import Connection
from .iq import IqDispatcher
from .jid import GROUP_SERVER, JID
from .network import Network, iq_error, iq_result

JPEG_MAGIC = b"\xff\xd8\xff"
PPS_PATH = "/v/t61.24694-24/{owner}_{id}_n.jpg?ccb=11-4&oh=sim&oe=0"


def _owner(net: Network, conn: Connection, iq: Node) -> str | None:
    """Whose picture an iq names: a phone number, a group id, or None (answered 404)."""
    target = iq.jid_attr("target")
    if target is None:
        return conn.phone
    if target.server == GROUP_SERVER:
        if net.store.groups.group(target.user) is not None:
            return target.user
    else:
        phone = net.phone_for(target)
        if phone is not None:
            return phone.phone
    conn.send(iq_error(iq, 404, "item-not-found"))
    return None


def handle_get(net: Network, conn: Connection, iq: Node) -> None:
    owner = _owner(net, conn, iq)
    if owner is None:
        return
    stored = net.store.picture(owner)
    if stored is None:
        conn.send(iq_error(iq, 404, "item-not-found"))
        return
    picture_id, _data = stored
    asked = iq.need("picture")
    if asked.attr("id") == picture_id:
        conn.send(iq_result(iq, [Node("picture", {"status": "304"})]))
        return
    path = PPS_PATH.format(owner=owner, id=picture_id)
    attrs: dict[str, str | JID] = {
        "id": picture_id,
        "type": asked.attr("type", "image"),
        "direct_path": path,
        "url": f"https://pps.whatsapp.net{path}",
    }
    conn.send(iq_result(iq, [Node("picture", attrs)]))


def handle_set(net: Network, conn: Connection, iq: Node) -> None:
    owner = _owner(net, conn, iq)
    if owner is None:
        return
    if owner != conn.phone:
        group = net.store.groups.group(owner)
        members = dict(net.store.groups.members(owner))
        if group is None or conn.phone not in members:
            conn.send(iq_error(iq, 403, "forbidden"))
            return
        if group.locked and not members[conn.phone]:
            conn.send(iq_error(iq, 403, "forbidden"))
            return
    picture = iq.child("picture")
    if picture is None:
        net.store.delete_picture(owner)
        conn.send(iq_result(iq))
        return
    data = picture.bytes_content()
    if not data.startswith(JPEG_MAGIC):
        # whatsmeow: ErrInvalidImageFormat ("the given data is not a valid image").
        conn.send(iq_error(iq, 406, "not-acceptable"))
        return
    picture_id = net.store.set_picture(owner, data)
    conn.send(iq_result(iq, [Node("picture", {"id": picture_id})]))


def register_picture_routes(iqs: IqDispatcher) -> None:
    iqs.add("w:profile:picture", "get", "picture", handle_get)
    iqs.add("w:profile:picture", "set", "*", handle_set)
