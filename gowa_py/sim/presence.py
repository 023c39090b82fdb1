"""Presence (online/offline, subscriptions) and chat states (typing, recording).

Both are ephemeral: they reach devices that are online now and are never queued.
A user counts as available while any of its logged-in devices has announced
``<presence type="available"/>``.
"""

from __future__ import annotations

import time

from .binary import Node
from .connection import Connection
from .jid import GROUP_SERVER, JID, LID_SERVER
from .network import Network


class Presence:
    """Presence subscriptions and last-seen times."""

    def __init__(self, net: Network) -> None:
        self.net = net
        #: phone -> connections subscribed to that phone's presence (with the JID they used).
        self._subscribers: dict[str, dict[Connection, JID]] = {}
        self._last_seen: dict[str, int] = {}

    def is_available(self, phone: str) -> bool:
        return any(
            c.available and not c.closed for (p, _), c in self.net.online.items() if p == phone
        )

    def _presence_node(self, phone: str, as_jid: JID) -> Node:
        if self.is_available(phone):
            return Node("presence", {"from": as_jid})
        attrs: dict = {"from": as_jid, "type": "unavailable"}
        if phone in self._last_seen:
            attrs["last"] = str(self._last_seen[phone])
        return Node("presence", attrs)

    def _announce(self, phone: str) -> None:
        for conn, as_jid in list(self._subscribers.get(phone, {}).items()):
            if conn.closed:
                del self._subscribers[phone][conn]
            else:
                conn.send(self._presence_node(phone, as_jid))

    def forget(self, conn: Connection) -> None:
        """A connection went away: drop its subscriptions and update its user's state."""
        for subscribers in self._subscribers.values():
            subscribers.pop(conn, None)
        if conn.jid is not None and conn.available:
            conn.available = False
            self._last_seen[conn.phone] = int(time.time())
            self._announce(conn.phone)

    def handle_presence(self, conn: Connection, node: Node) -> None:
        kind = node.attr("type")
        if kind == "subscribe":
            target = node.jid_attr("to")
            account = self.net.phone_for(target) if target is not None else None
            if target is not None and account is not None:
                self._subscribers.setdefault(account.phone, {})[conn] = target.user_jid()
                conn.send(self._presence_node(account.phone, target.user_jid()))
        elif kind in ("available", "unavailable", ""):
            was = self.is_available(conn.phone)
            conn.available = kind != "unavailable"
            if not conn.available:
                self._last_seen[conn.phone] = int(time.time())
            if self.is_available(conn.phone) != was:
                self._announce(conn.phone)

    def handle_chatstate(self, conn: Connection, node: Node) -> None:
        to = node.jid_attr("to")
        if to is None:
            return
        me = self.net.store.phone(conn.phone)
        assert me is not None
        if to.server == GROUP_SERVER:
            attrs: dict = {"from": to, "participant": self.net.address(me, 0, LID_SERVER)}
            recipients = [p for p, _ in self.net.store.groups.members(to.user) if p != me.phone]
        else:
            account = self.net.phone_for(to)
            attrs = {"from": self.net.address(me, 0, to.server)}
            recipients = [account.phone] if account is not None else []
        for phone in recipients:
            self.net.deliver_to_user(phone, Node("chatstate", attrs, node.content), queue=False)
