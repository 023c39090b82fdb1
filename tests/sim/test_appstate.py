"""The phone's server side at the iq boundary: app-state patches numbered, stored, served,
conflicts refused; device 0's prekey bundle.

(whatsmeow's own sends cannot reach this yet: neonize 0.5.2 sends every patch with an
empty collection name, see docs/sandbox.md.)
"""

from __future__ import annotations

from pathlib import Path

from gowa_py.sim.appstate import register_app_state_routes
from gowa_py.sim.binary import Node
from gowa_py.sim.certs import XEdSigner, xeddsa_verify
from gowa_py.sim.iq import IqDispatcher
from gowa_py.sim.jid import JID, SERVER_JID
from gowa_py.sim.network import Network
from gowa_py.sim.pb import SyncdPatch
from gowa_py.sim.phone import PrimaryPhone
from gowa_py.sim.prekeys import KEY_TYPE_DJB, handle_fetch
from gowa_py.sim.store import SignedPreKey, Store

from .test_iq import RecordingConnection

ALICE = "15550000001"


class Companion(RecordingConnection):
    """A logged-in device of Alice's; records what the server sends it."""

    closed = False

    def __init__(self, device: int) -> None:
        super().__init__(JID.pn(ALICE, device))
        self.phone, self.device = ALICE, device


def _setup(tmp_path: Path) -> tuple[IqDispatcher, Companion, Companion]:
    store = Store(tmp_path / "sim.db")
    store.create_phone(ALICE, "Alice", b"\x01" * 32)
    for _ in range(2):
        store.add_device(
            ALICE,
            noise_pub=b"\x02" * 32,
            identity_pub=b"\x03" * 32,
            registration_id=7,
            skey=SignedPreKey(1, b"\x04" * 32, b"\x05" * 64),
            platform="",
        )
    iqs = IqDispatcher(Network(store, XEdSigner()))
    register_app_state_routes(iqs)
    first, second = Companion(1), Companion(2)
    iqs.net.online[(ALICE, 2)] = second  # type: ignore[assignment]
    return iqs, first, second


def _sync(conn: Companion, iqs: IqDispatcher, patch: bytes | None = None, **attrs: str) -> Node:
    children = [Node("patch", {}, patch)] if patch is not None else None
    collection = Node("collection", {"name": "regular_low", **attrs}, children)
    iq = Node(
        "iq",
        {"id": "1", "xmlns": "w:sync:app:state", "type": "set", "to": SERVER_JID},
        [Node("sync", {}, [collection])],
    )
    iqs.dispatch(conn, iq)  # type: ignore[arg-type]
    answer = conn.sent.pop()
    assert answer.tag == "iq", answer
    return answer


def _patch(mac: bytes) -> bytes:
    return SyncdPatch(patchMAC=mac).SerializeToString()


def test_patches_are_numbered_stored_and_served(tmp_path: Path) -> None:
    iqs, first, second = _setup(tmp_path)
    sent = _sync(first, iqs, version="0", return_snapshot="false", patch=_patch(b"one"))
    assert sent.path("sync", "collection").attr("version") == "1"
    notice = second.sent.pop()
    assert notice.attr("type") == "server_sync"
    assert notice.child("collection").attr("version") == "1"

    stale = _sync(second, iqs, version="0", return_snapshot="false", patch=_patch(b"two"))
    refused = stale.path("sync", "collection")
    assert refused.attr("type") == "error" and refused.child("error").attr("code") == "409"
    assert len(list(refused.child("patches").iter_children("patch"))) == 1

    _sync(second, iqs, version="1", return_snapshot="false", patch=_patch(b"two"))
    full = _sync(second, iqs, return_snapshot="true").path("sync", "collection")
    served = [SyncdPatch.FromString(p.bytes_content()) for p in full.child("patches").children()]
    assert [(p.version.version, p.patchMAC) for p in served] == [(1, b"one"), (2, b"two")]
    assert full.attr("version") == "2"
    newer = _sync(first, iqs, version="1", return_snapshot="false").path("sync", "collection")
    assert [p.bytes_content() for p in newer.child("patches").children()] == [
        p.SerializeToString() for p in served[1:]
    ]


def test_a_collection_without_a_name_is_a_bad_request(tmp_path: Path) -> None:
    iqs, first, _ = _setup(tmp_path)
    iq = Node(
        "iq",
        {"id": "1", "xmlns": "w:sync:app:state", "type": "set", "to": SERVER_JID},
        [Node("sync", {}, [Node("collection", {"version": "0"})])],
    )
    iqs.dispatch(first, iq)  # type: ignore[arg-type]
    assert first.sent.pop().child("error").attr("code") == "400"


def test_the_phone_serves_a_valid_bundle_for_device_0(tmp_path: Path) -> None:
    """Senders that encrypt for device 0 (Baileys always does) get a verifiable bundle."""
    iqs, first, _ = _setup(tmp_path)
    iqs.add("encrypt", "get", "key", handle_fetch)
    phone = iqs.net.store.phone(ALICE)
    assert phone is not None
    users = [Node("user", {"jid": JID.pn(ALICE, n)}) for n in (0, 7)]
    iq = Node(
        "iq",
        {"id": "2", "xmlns": "encrypt", "type": "get", "to": SERVER_JID},
        [Node("key", {}, users)],
    )
    iqs.dispatch(first, iq)  # type: ignore[arg-type]
    device0, missing = first.sent.pop().need("list").children()
    identity = device0.need("identity").bytes_content()
    assert identity == PrimaryPhone(phone).signer.public
    skey = device0.need("skey")
    signed = KEY_TYPE_DJB + skey.need("value").bytes_content()
    assert xeddsa_verify(identity, signed, skey.need("signature").bytes_content())
    assert device0.child("key") is None
    assert missing.need("error").attr("code") == "404"
