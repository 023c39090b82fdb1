"""Newsletters (WhatsApp channels): whatsmeow's GraphQL queries (``xmlns="w:mex"``),
the ``newsletter`` iqs, posts, and the ``mex`` notifications of joins and leaves.

whatsmeow asks for channel metadata with ``<query query_id>{"variables": ...}</query>``
and reads ``<result>`` JSON (``{"data": ...}`` or ``{"errors": [...]}``). The query ids
are whatsmeow's constants (web and desktop flavours; one id is shared by the desktop
"subscribed" query and the desktop "follow" mutation, told apart by their variables).
Posts are not end-to-end encrypted: the owner sends ``<message to="…@newsletter">
<plaintext>``, the sandbox gives it the next ``server_id`` (in its ack), stores it and
hands it to the followers' online devices.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .binary import Node
from .connection import Connection
from .iq import IqDispatcher
from .jid import JID
from .network import Network, iq_error, iq_result, now
from .newsletterstore import Newsletter
from .routing import message_ack

log = logging.getLogger(__name__)

NEWSLETTER_SERVER = "newsletter"
FETCH = {"6563316087068696", "9779843322044422"}
SUBSCRIBED = {"6388546374527196", "8621797084555037"}
CREATE = {"6234210096708695", "27527996220149684"}
FOLLOW = {"9926858900719341", "8621797084555037"}
UNFOLLOW = {"6392786840836363", "8782612271820087"}
MUTE = {"6274038279359549", "5971669009605755"}
UNMUTE = {"6068417879924485", "6104029483058502"}


def _text(text: str, at: int) -> dict[str, str]:
    return {"text": text, "id": str(at), "update_time": str(at * 1_000_000)}


def metadata(net: Network, item: Newsletter, viewer: str | None) -> dict[str, Any]:
    """whatsmeow's ``types.NewsletterMetadata`` as WhatsApp's GraphQL sends it."""
    followers = net.store.newsletters.followers(item.nid)
    meta: dict[str, Any] = {
        "id": f"{item.nid}@{NEWSLETTER_SERVER}",
        "state": {"type": "active"},
        "thread_metadata": {
            "creation_time": str(item.created_at),
            "invite": item.invite,
            "name": _text(item.name, item.created_at),
            "description": _text(item.description, item.created_at),
            "subscribers_count": str(len(followers)),
            "verification": "unverified",
            "picture": None,
            "preview": {},
            "settings": {"reaction_codes": {"value": "all"}},
        },
        "viewer_metadata": None,
    }
    state = net.store.newsletters.viewer(item.nid, viewer) if viewer else None
    if state is not None:
        role, muted = state
        meta["viewer_metadata"] = {"mute": "on" if muted else "off", "role": role}
    return meta


def _not_found(path: str) -> dict[str, Any]:
    extensions = {"error_code": 404, "is_retryable": False, "severity": "CRITICAL"}
    return {
        "data": None,
        "errors": [{"message": "Not found", "extensions": extensions, "path": [path]}],
    }


def notify(net: Network, phone: str, key: str, data: dict[str, Any]) -> None:
    """A ``<notification type="mex">`` (whatsmeow: NewsletterJoin/Leave/MuteChange)."""
    update = Node("update", {"op_name": key}, json.dumps({"data": {key: data}}).encode())
    node = Node(
        "notification",
        {"from": JID("", "s.whatsapp.net"), "type": "mex", "id": net.next_id(), "t": now()},
        [update],
    )
    net.deliver_to_user(phone, node, queue=False)


def _target(net: Network, variables: dict[str, Any]) -> Newsletter | None:
    jid = str(variables.get("newsletter_id", ""))
    return net.store.newsletters.newsletter(jid.split("@", 1)[0]) if jid else None


def _answer(net: Network, conn: Connection, query_id: str, variables: dict[str, Any]) -> Any:
    """The GraphQL answer to one query, or None for a query the sandbox does not know."""
    store, me = net.store.newsletters, conn.phone
    if (
        query_id in FOLLOW and "newsletter_id" in variables
    ) or query_id in UNFOLLOW | MUTE | UNMUTE:
        item = _target(net, variables)
        if item is None:
            return _not_found("xwa2_newsletter")
        if query_id in FOLLOW:
            store.follow(item.nid, me)
            notify(net, me, "xwa2_notify_newsletter_on_join", metadata(net, item, me))
        elif query_id in UNFOLLOW:
            store.unfollow(item.nid, me)
            left = {"id": f"{item.nid}@{NEWSLETTER_SERVER}", "role": "subscriber"}
            notify(net, me, "xwa2_notify_newsletter_on_leave", left)
        else:
            store.set_muted(item.nid, me, query_id in MUTE)
            mute = {
                "id": f"{item.nid}@{NEWSLETTER_SERVER}",
                "mute": "on" if query_id in MUTE else "off",
            }
            notify(net, me, "xwa2_notify_newsletter_on_mute_change", mute)
        return {"data": {"xwa2_newsletter_update": metadata(net, item, me)}}
    if query_id in SUBSCRIBED:
        items = [store.newsletter(nid) for nid in store.followed(me)]
        listed = [metadata(net, item, me) for item in items if item is not None]
        return {"data": {"xwa2_newsletter_subscribed": listed}}
    if query_id in FETCH:
        asked = variables.get("input") or {}
        key = str(asked.get("key", ""))
        found = (
            store.by_invite(key)
            if asked.get("type") == "INVITE"
            else store.newsletter(key.split("@", 1)[0])
        )
        if found is None:
            return _not_found("xwa2_newsletter")
        viewer = me if variables.get("fetch_viewer_metadata") else None
        return {"data": {"xwa2_newsletter": metadata(net, found, viewer)}}
    if query_id in CREATE:
        params = variables.get("newsletter_input") or {}
        created = store.create(str(params.get("name", "")), str(params.get("description", "")), me)
        return {"data": {"xwa2_newsletter_create": metadata(net, created, me)}}
    return None


def handle_mex(net: Network, conn: Connection, iq: Node) -> None:
    query = iq.need("query")
    try:
        variables = json.loads(query.bytes_content() or b"{}").get("variables") or {}
    except (json.JSONDecodeError, AttributeError):
        conn.send(iq_error(iq, 400, "bad-request"))
        return
    answer = _answer(net, conn, query.attr("query_id"), variables)
    if answer is None:
        log.warning(
            "unknown w:mex query_id=%r from %r: answering 501", query.attr("query_id"), conn
        )
        conn.send(iq_error(iq, 501, "feature-not-implemented"))
        return
    conn.send(iq_result(iq, [Node("result", {}, json.dumps(answer).encode())]))


def _post_node(nid: str, server_id: int, message_id: str, kind: str, t: int, body: bytes) -> Node:
    return Node(
        "message",
        {"server_id": str(server_id), "id": message_id, "t": str(t), "type": kind},
        [Node("plaintext", {}, body)],
    )


def handle_messages(net: Network, conn: Connection, iq: Node) -> None:
    asked = iq.need("messages")
    jid = asked.jid_attr("jid")
    item = net.store.newsletters.newsletter(jid.user) if jid is not None else None
    if item is None:
        conn.send(iq_error(iq, 404, "item-not-found"))
        return
    count = int(asked.attr("count") or 100)
    before = int(asked.attr("before") or 0)
    posts = net.store.newsletters.posts(item.nid, count, before)
    nodes = [_post_node(item.nid, p.server_id, p.id, p.type, p.t, p.plaintext) for p in posts]
    attrs: dict[str, str | JID] = {"jid": JID(item.nid, NEWSLETTER_SERVER), "t": now()}
    conn.send(iq_result(iq, [Node("messages", attrs, nodes)]))


def handle_live_updates(net: Network, conn: Connection, iq: Node) -> None:
    conn.send(iq_result(iq, [Node("live_updates", {"duration": "300"})]))


def route_newsletter_message(net: Network, conn: Connection, msg: Node) -> None:
    """A post: only the owner (or an admin) may post; followers' devices get it."""
    to = msg.jid_attr("to")
    assert to is not None
    store = net.store.newsletters
    state = store.viewer(to.user, conn.phone)
    plaintext = msg.child("plaintext")
    if state is None or state[0] not in ("owner", "admin") or plaintext is None:
        conn.send(message_ack(msg, error="403"))
        return
    post = store.post(to.user, msg.attr("id"), msg.attr("type", "text"), plaintext.bytes_content())
    conn.send(message_ack(msg, server_id=str(post.server_id)))
    node = _post_node(to.user, post.server_id, post.id, post.type, post.t, post.plaintext)
    node.attrs["from"] = to
    for phone in store.followers(to.user):
        for device in net.device_numbers(phone):
            if (phone, device) != (conn.phone, conn.device):
                net.deliver(phone, device, node, queue=False)
    log.info("%r posted %s to newsletter %s", conn, post.server_id, to.user)


def register_newsletter_routes(iqs: IqDispatcher) -> None:
    iqs.add("w:mex", "get", "query", handle_mex)
    iqs.add("newsletter", "get", "messages", handle_messages)
    iqs.add("newsletter", "set", "live_updates", handle_live_updates)
