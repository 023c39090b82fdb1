"""WABinary codec: round trips over random nodes, token tables, strict encoding."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gowa_py.sim.binary import BinaryError, Node, marshal, unmarshal
from gowa_py.sim.jid import JID
from gowa_py.sim.tokens import DICT_VERSION, load_tokens, tokens_for

TOKENS = load_tokens()
digits = st.text("0123456789", min_size=1, max_size=20)
texts = st.one_of(
    st.sampled_from([t for t in TOKENS.single if t]),
    st.sampled_from(list(TOKENS.double[2])),
    st.text("0123456789-.", min_size=1, max_size=130),
    st.text("0123456789ABCDEF", min_size=1, max_size=130),
    st.text(min_size=1, max_size=300),
)
jids = st.one_of(
    st.builds(JID.pn, digits, st.integers(0, 255)),
    st.builds(JID.lid, digits, st.integers(0, 255)),
    st.builds(JID, digits, st.just("hosted"), st.integers(0, 255)),
    st.builds(JID, digits, st.just("hosted.lid"), st.integers(0, 255)),
    st.builds(JID, digits, st.just("s.whatsapp.net"), st.integers(0, 255), st.integers(2, 127)),
    st.builds(JID, digits, st.just("msgr"), st.integers(0, 65535)),
    st.builds(
        JID, digits, st.just("interop"), st.integers(0, 65535), st.just(0), st.integers(0, 65535)
    ),
    st.builds(
        JID,
        st.one_of(st.just(""), digits),
        st.sampled_from(["g.us", "broadcast", "newsletter", "call"]),
    ),
    st.just(JID("", "s.whatsapp.net")),
)
attr_values = st.one_of(texts, jids)
binary_content = st.binary(max_size=70000)


def nodes(depth: int = 3) -> st.SearchStrategy[Node]:
    content = st.one_of(st.none(), binary_content, texts)
    if depth > 0:
        content = st.one_of(content, st.lists(st.deferred(lambda: nodes(depth - 1)), max_size=4))
    return st.builds(
        Node,
        texts.filter(lambda t: t != "0"),
        st.dictionaries(texts, attr_values, max_size=4),
        content,
    )


def normalized(node: Node) -> Node:
    """What the decoder yields (as in whatsmeow): an empty child list comes back as no content,
    string content that was neither a token nor packed comes back as bytes."""
    content = node.content
    if isinstance(content, list):
        content = [normalized(c) for c in content] or None
    elif isinstance(content, str):
        content = unmarshal(marshal(Node("x", {}, content))).content
    return Node(node.tag, dict(node.attrs), content)


@settings(max_examples=300, deadline=None)
@given(nodes())
def test_round_trip(node: Node) -> None:
    assert unmarshal(marshal(node)) == normalized(node)


@settings(max_examples=50, deadline=None)
@given(nodes(2))
def test_compressed_round_trip(node: Node) -> None:
    assert unmarshal(marshal(node, compress=True)) == normalized(node)


def test_token_tables_match_whatsmeow_constants() -> None:
    assert DICT_VERSION == 3
    assert len(TOKENS.single) == 236 and [len(row) for row in TOKENS.double] == [256] * 4
    expected = {
        "s.whatsapp.net": 3,
        "xmlns": 22,
        "iq": 25,
        "t": 26,
        "ack": 27,
        "enc": 29,
        "usync": 121,
        "lid": 118,
        "encrypt": 203,
        "device-identity": 230,
        "pkmsg": 83,
        "msg": 77,
        "w:p": 87,
        "success": 76,
    }
    assert {k: TOKENS.single_index[k] for k in expected} == expected
    assert TOKENS.double_index["passive"] == (0, 24)
    assert TOKENS.double_index["pair-device"] == (1, 238)
    assert TOKENS.double[0][0] == "read-self"


def test_known_wire_forms() -> None:
    # A device-0 LID is a JID pair, a device LID an AD JID; numbers are nibble-packed.
    pair = bytes([250, 255, 0x82, 0x12, 0x3F, 118])
    assert marshal(Node("iq", {"jid": JID.lid("123")})).endswith(pair)
    ad = bytes([247, 1, 3, 255, 2, 0x12, 0x34])
    assert marshal(Node("iq", {"jid": JID.lid("1234", 3)})).endswith(ad)
    assert marshal(Node("iq", {}, b"iq")) == bytes([0, 248, 2, 25, 252, 2]) + b"iq"
    assert unmarshal(b"\x00" + bytes([248, 1, 25])) == Node("iq")


def test_jid_text_form() -> None:
    for text in ["123:4@lid", "123@s.whatsapp.net", "s.whatsapp.net", "1.2:3@s.whatsapp.net"]:
        assert str(JID.parse(text)) == text


@pytest.mark.parametrize(
    "bad",
    [
        Node("iq", {"id": 5}),  # type: ignore[dict-item]
        Node("iq", {}, 5),  # type: ignore[arg-type]
        Node("", {}),
        Node("iq", {}, ["not a node"]),  # type: ignore[list-item]
        Node("a", {"jid": JID.pn("1", 300)}),
    ],
)
def test_encoder_rejects_malformed_nodes(bad: Node) -> None:
    with pytest.raises(BinaryError):
        marshal(bad)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00" + bytes([248, 1, 25, 0]),  # leftover byte
        b"\x00" + bytes([248, 1, 242]),  # unused token
        b"\x00" + bytes([248, 2, 25]),  # truncated
        b"\x02" + b"not zlib",
        b"\x02" + zlib.compress(bytes([0])),  # empty list as node
    ],
)
def test_decoder_rejects_malformed_frames(payload: bytes) -> None:
    with pytest.raises(BinaryError):
        unmarshal(payload)


def test_dictionary_v2_is_baileys_tables() -> None:
    """Baileys announces ``WA\\x06\\x02`` and tokenizes with its own, different tables."""
    v2 = tokens_for(2)
    assert tokens_for(3) is TOKENS
    assert len(v2.single) == 236 and [len(row) for row in v2.double] == [256] * 4
    assert (v2.single[3], v2.single[9], v2.double[0][0]) == (
        "s.whatsapp.net",
        "broadcast",
        "media-for1-1.cdn.whatsapp.net",
    )
    assert v2.single != TOKENS.single
    props = Node("props", {"protocol": "2", "hash": "abc"})
    node = Node("iq", {"xmlns": "w", "type": "get", "to": JID("", "s.whatsapp.net")}, [props])
    encoded = marshal(node, tokens=v2)
    assert encoded != marshal(node)
    assert unmarshal(encoded, v2) == node
