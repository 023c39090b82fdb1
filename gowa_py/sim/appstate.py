"""App-state sync (``w:sync:app:state``): patches stored and served per collection.

whatsmeow names a collection (``critical_block``, ``critical_unblock_low``,
``regular_low``, ``regular_high``, ``regular``) and either sends a patch on top of the
version it holds, or asks for the patches after a version (or, on its first sync, for
a snapshot). The sandbox numbers each accepted patch (the next version, written into the
patch, which the sender's MACs already cover), keeps it, and tells the account's other
devices (``server_sync``), which fetch it. A patch on top of an old version is refused
with 409 and the patches it missed, as WhatsApp does; whatsmeow applies them and sends
again. The sandbox never has snapshots: a snapshot request gets every patch instead.

Which device fetched which collection is kept (``Network.app_state_fetches``): a
companion only fetches once it holds the app-state key the phone shared.
"""

from __future__ import annotations

import logging

from google.protobuf.message import DecodeError

from .binary import Node
from .connection import Connection
from .iq import IqDispatcher
from .jid import SERVER_JID
from .network import Network, iq_error, iq_result, now
from .pb import SyncdPatch, SyncdVersion

log = logging.getLogger(__name__)


def _patches(net: Network, phone: str, name: str, after: int) -> Node:
    patches = [Node("patch", {}, raw) for raw in net.store.app_state.since(phone, name, after)]
    return Node("patches", {}, patches)


def _store_patch(net: Network, conn: Connection, collection: Node, raw: bytes) -> Node:
    """Accept a patch on top of the latest version, or answer 409 with what was missed."""
    name = collection.attr("name")
    base = int(collection.attr("version", "0"))
    latest = net.store.app_state.version(conn.phone, name)
    if base != latest:
        error = Node("error", {"code": "409", "text": "conflict"})
        missed = _patches(net, conn.phone, name, base)
        return Node("collection", {"name": name, "type": "error"}, [error, missed])
    patch = SyncdPatch.FromString(raw)
    patch.version.CopyFrom(SyncdVersion(version=latest + 1))
    net.store.app_state.add(conn.phone, name, latest + 1, patch.SerializeToString())
    log.info("%r: app state %s now at version %d", conn, name, latest + 1)
    notice = Node(
        "notification",
        {"from": SERVER_JID, "type": "server_sync", "id": net.next_id(), "t": now()},
        [Node("collection", {"name": name, "version": str(latest + 1)})],
    )
    net.deliver_to_user(conn.phone, notice, skip=conn.device)
    return Node("collection", {"name": name, "version": str(latest + 1)})


def _fetch(net: Network, conn: Connection, collection: Node) -> Node:
    name = collection.attr("name")
    fetched = net.app_state_fetches.setdefault((conn.phone, conn.device), [])
    if name not in fetched:
        fetched.append(name)
    after = 0 if collection.attr("return_snapshot") == "true" else int(collection.attr("version"))
    version = net.store.app_state.version(conn.phone, name)
    return Node(
        "collection",
        {"name": name, "version": str(version)},
        [_patches(net, conn.phone, name, after)],
    )


def handle_sync(net: Network, conn: Connection, iq: Node) -> None:
    sync = iq.child("sync")
    collections = list(sync.iter_children("collection")) if sync else []
    answers = []
    try:
        for collection in collections:
            if not collection.attr("name"):
                raise ValueError(f"collection without a name: {collection}")
            patch = collection.child("patch")
            if patch is not None:
                answers.append(_store_patch(net, conn, collection, patch.bytes_content()))
            else:
                answers.append(_fetch(net, conn, collection))
    except (ValueError, DecodeError) as exc:
        log.warning("%r: bad app state request: %s", conn, exc)
        conn.send(iq_error(iq, 400, "bad-request"))
        return
    if not answers:
        conn.send(iq_error(iq, 400, "bad-request"))
        return
    conn.send(iq_result(iq, [Node("sync", {}, answers)]))


def register_app_state_routes(iqs: IqDispatcher) -> None:
    iqs.add("w:sync:app:state", "set", "sync", handle_sync)
