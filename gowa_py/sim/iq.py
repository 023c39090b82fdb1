"""``<iq>`` dispatch: every request gets an answer, quickly.

whatsmeow waits up to 75 s for an iq reply, so an unanswered request stalls the worker.
Requests are routed by ``(xmlns, type, first child tag)``; anything without a handler
gets ``<error code="501" text="feature-not-implemented"/>`` and a log line naming the
namespace and child, so a missing feature shows up as a clean client-side error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .binary import Node
from .connection import Connection
from .network import Network, iq_error, iq_result

log = logging.getLogger(__name__)

IqHandler = Callable[[Network, Connection, Node], None]
ANY_CHILD = "*"

PRIVACY_DEFAULTS = (
    ("readreceipts", "all"),
    ("last", "all"),
    ("online", "all"),
    ("profile", "all"),
    ("status", "all"),
    ("groupadd", "all"),
    ("calladd", "all"),
    ("messages", "all"),
)
#: The empty A/B property set's hash, and the seconds after which a client asks again.
PROPS_HASH = "0"
PROPS_REFRESH = "86400"


class IqDispatcher:
    """Routing table for client iq requests."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self._routes: dict[tuple[str, str, str], tuple[IqHandler, bool]] = {}

    def add(
        self, xmlns: str, kind: str, child: str, handler: IqHandler, *, needs_login: bool = True
    ) -> None:
        self._routes[(xmlns, kind, child)] = (handler, needs_login)

    def dispatch(self, conn: Connection, iq: Node) -> None:
        xmlns, kind = iq.attr("xmlns"), iq.attr("type")
        first = iq.children()[0].tag if iq.children() else ""
        entry = self._routes.get((xmlns, kind, first)) or self._routes.get((xmlns, kind, ANY_CHILD))
        if entry is None:
            log.warning(
                "unhandled iq xmlns=%r type=%r child=%r from %r: answering 501",
                xmlns,
                kind,
                first,
                conn,
            )
            conn.send(iq_error(iq, 501, "feature-not-implemented"))
            return
        handler, needs_login = entry
        if needs_login and conn.jid is None:
            conn.send(iq_error(iq, 401, "not-authorized"))
            return
        handler(self.net, conn, iq)


def empty_result(_net: Network, conn: Connection, iq: Node) -> None:
    conn.send(iq_result(iq))


def privacy_settings(_net: Network, conn: Connection, iq: Node) -> None:
    categories = [Node("category", {"name": n, "value": v}) for n, v in PRIVACY_DEFAULTS]
    conn.send(iq_result(iq, [Node("privacy", {}, categories)]))


def empty_blocklist(_net: Network, conn: Connection, iq: Node) -> None:
    conn.send(iq_result(iq, [Node("list", {})]))


def ab_props(_net: Network, conn: Connection, iq: Node) -> None:
    """WhatsApp's A/B properties (``<props protocol="2">``): the sandbox runs no
    experiments, so the set is empty, under a stable hash the client stores and sends back."""
    props = Node("props", {"protocol": "2", "hash": PROPS_HASH, "refresh": PROPS_REFRESH}, [])
    conn.send(iq_result(iq, [props]))


def register_basic_routes(iqs: IqDispatcher) -> None:
    """Keepalive, passive mode, privacy and blocklist: answers that need no state."""
    iqs.add("w:p", "get", ANY_CHILD, empty_result, needs_login=False)
    iqs.add("passive", "set", ANY_CHILD, empty_result)
    iqs.add("privacy", "get", "privacy", privacy_settings)
    iqs.add("privacy", "set", ANY_CHILD, empty_result)
    iqs.add("blocklist", "get", ANY_CHILD, empty_blocklist)
    iqs.add("w", "get", "props", ab_props)
    iqs.add("urn:xmpp:whatsapp:dirty", "set", ANY_CHILD, empty_result)
