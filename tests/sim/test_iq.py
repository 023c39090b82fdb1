"""iq dispatch: every request is answered, unknown ones with 501 and a log line."""

from __future__ import annotations

import logging
from pathlib import Path

from gowa_py.sim.binary import Node, marshal
from gowa_py.sim.certs import XEdSigner
from gowa_py.sim.iq import IqDispatcher, register_basic_routes
from gowa_py.sim.jid import JID, SERVER_JID
from gowa_py.sim.network import Network
from gowa_py.sim.store import Store


class RecordingConnection:
    """Stands in for a logged-in client connection: records what the server sends."""

    def __init__(self, jid: JID | None) -> None:
        self.jid = jid
        self.sent: list[Node] = []

    def send(self, node: Node) -> None:
        marshal(node)  # everything sent must be encodable
        self.sent.append(node)


def _dispatcher(tmp_path: Path) -> IqDispatcher:
    iqs = IqDispatcher(Network(Store(tmp_path / "sim.db"), XEdSigner()))
    register_basic_routes(iqs)
    return iqs


def _iq(xmlns: str, kind: str, *children: Node) -> Node:
    return Node(
        "iq",
        {"id": "1.2-3", "xmlns": xmlns, "type": kind, "to": SERVER_JID},
        list(children) or None,
    )


def test_unknown_iq_gets_501_and_a_log_line(tmp_path: Path, caplog) -> None:
    iqs = _dispatcher(tmp_path)
    conn = RecordingConnection(JID.pn("15550000001", 1))
    with caplog.at_level(logging.WARNING):
        iqs.dispatch(conn, _iq("w:biz", "get", Node("business_profile")))
    (reply,) = conn.sent
    assert reply.attrs == {"from": SERVER_JID, "type": "error", "id": "1.2-3"}
    assert reply.child("error").attrs == {"code": "501", "text": "feature-not-implemented"}
    assert "w:biz" in caplog.text and "business_profile" in caplog.text


def test_known_iqs(tmp_path: Path) -> None:
    iqs = _dispatcher(tmp_path)
    conn = RecordingConnection(JID.pn("15550000001", 1))
    iqs.dispatch(conn, _iq("w:p", "get"))
    iqs.dispatch(conn, _iq("passive", "set", Node("active")))
    iqs.dispatch(conn, _iq("privacy", "get", Node("privacy")))
    ping, passive, privacy = conn.sent
    assert ping.attr("type") == passive.attr("type") == "result"
    names = {c.attr("name") for c in privacy.path("privacy").children()}
    assert "readreceipts" in names


def test_requests_before_login_are_refused_not_ignored(tmp_path: Path) -> None:
    iqs = _dispatcher(tmp_path)
    conn = RecordingConnection(None)
    iqs.dispatch(conn, _iq("passive", "set", Node("active")))
    iqs.dispatch(conn, _iq("w:p", "get"))
    refused, ping = conn.sent
    assert refused.child("error").attr("code") == "401"
    assert ping.attr("type") == "result"


def test_ab_props_answer_like_whatsapp(tmp_path: Path) -> None:
    """Baileys fetches ``<props protocol="2">`` at every login; a 501 fails its init queries."""
    iqs = _dispatcher(tmp_path)
    conn = RecordingConnection(JID.pn("15550000001", 1))
    iqs.dispatch(conn, _iq("w", "get", Node("props", {"protocol": "2", "hash": ""})))
    (reply,) = conn.sent
    assert reply.attr("type") == "result"
    props = reply.child("props")
    assert props is not None and props.attr("protocol") == "2"
    assert props.attr("hash") and int(props.attr("refresh")) > 0
