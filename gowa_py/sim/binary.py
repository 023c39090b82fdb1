"""WABinary: WhatsApp's binary XML node encoding (whatsmeow ``binary`` package).

The encoder is deliberately strict: attribute values must be ``str`` or :class:`JID`,
content must be ``None``, ``bytes``, ``str`` or a list of :class:`Node`. A stanza of the
wrong shape would make the Go client panic (and kill its host process), so it is better
to fail loudly here, in the sandbox.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from .jid import AD_DOMAINS, AD_SERVERS, INTEROP_SERVER, JID, MESSENGER_SERVER, USER_SERVER
from .tokens import TokenTables, load_tokens

LIST_EMPTY = 0
DICTIONARY_0 = 236
DICTIONARY_3 = 239
INTEROP_JID = 245
FB_JID = 246
AD_JID = 247
LIST_8 = 248
LIST_16 = 249
JID_PAIR = 250
HEX_8 = 251
BINARY_8 = 252
BINARY_20 = 253
BINARY_32 = 254
NIBBLE_8 = 255
PACKED_MAX = 127

FLAG_COMPRESSED = 0x02
_NIBBLE_CHARS = "0123456789-."
_HEX_CHARS = "0123456789ABCDEF"

Content = None | bytes | str | list["Node"]
AttrValue = str | JID


class BinaryError(ValueError):
    """A node could not be encoded or a frame could not be decoded."""


@dataclass(slots=True)
class Node:
    """One stanza element: tag, attributes and content (child nodes, bytes or a string)."""

    tag: str
    attrs: dict[str, AttrValue] = field(default_factory=dict)
    content: Content = None

    def children(self) -> list[Node]:
        return self.content if isinstance(self.content, list) else []

    def child(self, tag: str) -> Node | None:
        return next((c for c in self.children() if c.tag == tag), None)

    def path(self, *tags: str) -> Node | None:
        """Follow nested children by tag (``node.path("usync", "list")``)."""
        node: Node | None = self
        for tag in tags:
            node = node.child(tag) if node is not None else None
        return node

    def need(self, *tags: str) -> Node:
        """:meth:`path` for children a stanza must have: a missing one is malformed input."""
        node = self.path(*tags)
        if node is None:
            raise BinaryError(f"<{self.tag}> has no <{'/'.join(tags)}>")
        return node

    def iter_children(self, tag: str) -> Iterator[Node]:
        return (c for c in self.children() if c.tag == tag)

    def attr(self, key: str, default: str = "") -> str:
        """A string attribute (JIDs are rendered as text)."""
        value = self.attrs.get(key)
        return default if value is None else str(value)

    def jid_attr(self, key: str) -> JID | None:
        value = self.attrs.get(key)
        return value if isinstance(value, JID) else None

    def bytes_content(self) -> bytes:
        if isinstance(self.content, bytes):
            return self.content
        if isinstance(self.content, str):
            return self.content.encode()
        return b""

    def __str__(self) -> str:
        attrs = "".join(f' {k}="{v}"' for k, v in self.attrs.items())
        if self.content is None:
            return f"<{self.tag}{attrs}/>"
        if isinstance(self.content, list):
            inner = "".join(str(c) for c in self.content)
        elif isinstance(self.content, bytes):
            inner = f"<!-- {len(self.content)} bytes -->"
        else:
            inner = self.content
        return f"<{self.tag}{attrs}>{inner}</{self.tag}>"


# ---------------------------------------------------------------- encoder


class _Encoder:
    def __init__(self, tokens: TokenTables) -> None:
        self.out = bytearray()
        self.tokens = tokens

    def list_start(self, size: int) -> None:
        if size == 0:
            self.out.append(LIST_EMPTY)
        elif size < 256:
            self.out += bytes((LIST_8, size))
        elif size < 65536:
            self.out.append(LIST_16)
            self.out += size.to_bytes(2, "big")
        else:
            raise BinaryError(f"list too long: {size}")

    def byte_length(self, length: int) -> None:
        if length < 256:
            self.out += bytes((BINARY_8, length))
        elif length < 1 << 20:
            self.out.append(BINARY_20)
            self.out += length.to_bytes(3, "big")
        elif length < 1 << 31:
            self.out.append(BINARY_32)
            self.out += length.to_bytes(4, "big")
        else:
            raise BinaryError(f"binary too long: {length}")

    def raw(self, data: bytes) -> None:
        self.byte_length(len(data))
        self.out += data

    def packed(self, text: str, tag: int) -> None:
        alphabet = _NIBBLE_CHARS if tag == NIBBLE_8 else _HEX_CHARS
        codes = [alphabet.index(c) for c in text]
        if len(codes) % 2:
            codes.append(15)
        self.out.append(tag)
        self.out.append((len(codes) // 2) | (0x80 if len(text) % 2 else 0))
        self.out += bytes((codes[i] << 4) | codes[i + 1] for i in range(0, len(codes), 2))

    def string(self, text: str) -> None:
        single = self.tokens.single_index.get(text)
        if single is not None:
            self.out.append(single)
            return
        double = self.tokens.double_index.get(text)
        if double is not None:
            self.out += bytes((DICTIONARY_0 + double[0], double[1]))
        elif 0 < len(text) <= PACKED_MAX and all(c in _NIBBLE_CHARS for c in text):
            self.packed(text, NIBBLE_8)
        elif 0 < len(text) <= PACKED_MAX and all(c in _HEX_CHARS for c in text):
            self.packed(text, HEX_8)
        else:
            self.raw(text.encode())

    def jid(self, jid: JID) -> None:
        if jid.is_ad_form:
            if jid.device > 255:
                raise BinaryError(f"device {jid.device} does not fit an AD JID")
            domain = AD_DOMAINS[jid.server] if jid.server != USER_SERVER else jid.agent
            self.out += bytes((AD_JID, domain, jid.device))
            self.string(jid.user)
        elif jid.server == MESSENGER_SERVER:
            self.out.append(FB_JID)
            self.string(jid.user)
            self.out += jid.device.to_bytes(2, "big")
            self.string(jid.server)
        elif jid.server == INTEROP_SERVER:
            self.out.append(INTEROP_JID)
            self.string(jid.user)
            self.out += jid.device.to_bytes(2, "big") + jid.integrator.to_bytes(2, "big")
            self.string(jid.server)
        else:
            self.out.append(JID_PAIR)
            if jid.user:
                self.string(jid.user)
            else:
                self.out.append(LIST_EMPTY)
            self.string(jid.server)

    def attr_value(self, key: str, value: object) -> None:
        if isinstance(value, JID):
            self.jid(value)
        elif isinstance(value, str):
            self.string(value)
        else:
            raise BinaryError(f"attribute {key!r} must be str or JID, not {type(value).__name__}")

    def node(self, node: Node) -> None:
        if not isinstance(node, Node):
            raise BinaryError(f"expected Node, got {type(node).__name__}")
        if not isinstance(node.tag, str) or not node.tag:
            raise BinaryError("node tag must be a non-empty string")
        if node.tag == "0":
            self.out += bytes((LIST_8, LIST_EMPTY))
            return
        attrs = [(k, v) for k, v in node.attrs.items() if v is not None and v != ""]
        has_content = node.content is not None
        self.list_start(1 + 2 * len(attrs) + int(has_content))
        self.string(node.tag)
        for key, value in attrs:
            if not isinstance(key, str) or not key:
                raise BinaryError(f"bad attribute key {key!r} on <{node.tag}>")
            self.string(key)
            self.attr_value(key, value)
        if has_content:
            self.content(node)

    def content(self, node: Node) -> None:
        content = node.content
        if isinstance(content, (bytes, bytearray, memoryview)):
            self.raw(bytes(content))
        elif isinstance(content, str):
            self.string(content)
        elif isinstance(content, list):
            self.list_start(len(content))
            for child in content:
                self.node(child)
        else:
            raise BinaryError(
                f"content of <{node.tag}> must be bytes, str or list, not {type(content).__name__}"
            )


def marshal(node: Node, *, compress: bool = False, tokens: TokenTables | None = None) -> bytes:
    """Encode a node as a frame payload (flags byte + body), by default with whatsmeow's tables."""
    enc = _Encoder(tokens or load_tokens())
    enc.node(node)
    if compress:
        return bytes((FLAG_COMPRESSED,)) + zlib.compress(bytes(enc.out))
    return b"\x00" + bytes(enc.out)


# ---------------------------------------------------------------- decoder


class _Decoder:
    def __init__(self, data: bytes, tokens: TokenTables) -> None:
        self.data = data
        self.pos = 0
        self.tokens = tokens

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise BinaryError("unexpected end of data")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise BinaryError("unexpected end of data")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int_n(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def list_size(self, tag: int) -> int:
        if tag == LIST_EMPTY:
            return 0
        if tag == LIST_8:
            return self.byte()
        if tag == LIST_16:
            return self.int_n(2)
        raise BinaryError(f"invalid list tag {tag}")

    def packed(self, tag: int) -> str:
        start = self.byte()
        alphabet = _NIBBLE_CHARS if tag == NIBBLE_8 else _HEX_CHARS
        chars = []
        for byte in self.take(start & 0x7F):
            for nibble in (byte >> 4, byte & 0x0F):
                if nibble >= len(alphabet):
                    if nibble != 15:
                        raise BinaryError(f"invalid nibble {nibble}")
                    chars.append("\x00")
                else:
                    chars.append(alphabet[nibble])
        if start & 0x80:
            chars.pop()
        return "".join(chars)

    def string_value(self) -> str:
        value = self.read(as_string=True)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise BinaryError(f"expected string, got {type(value).__name__}")
        return value

    def read(self, *, as_string: bool) -> Content | JID:
        tag = self.byte()
        if tag == LIST_EMPTY:
            return None
        if tag in (LIST_8, LIST_16):
            return [self.node() for _ in range(self.list_size(tag))]
        if tag in (BINARY_8, BINARY_20, BINARY_32):
            if tag == BINARY_8:
                length = self.byte()
            elif tag == BINARY_20:
                length = self.int_n(3) & 0x0FFFFF
            else:
                length = self.int_n(4)
            data = self.take(length)
            return data.decode("utf-8", "surrogateescape") if as_string else data
        if DICTIONARY_0 <= tag <= DICTIONARY_3:
            row = self.tokens.double[tag - DICTIONARY_0]
            index = self.byte()
            return row[index]
        if tag == JID_PAIR:
            user = self.string_value()
            return JID(user, self.string_value())
        if tag == AD_JID:
            domain, device = self.byte(), self.byte()
            user = self.string_value()
            if domain in AD_SERVERS:
                return JID(user, AD_SERVERS[domain], device)
            return JID(user, USER_SERVER, device, agent=domain)
        if tag == FB_JID:
            user = self.string_value()
            device = self.int_n(2)
            server = self.string_value()
            if server != MESSENGER_SERVER:
                raise BinaryError(f"FB JID with server {server!r}")
            return JID(user, server, device)
        if tag == INTEROP_JID:
            user = self.string_value()
            device, integrator = self.int_n(2), self.int_n(2)
            server = self.string_value()
            if server != INTEROP_SERVER:
                raise BinaryError(f"interop JID with server {server!r}")
            return JID(user, server, device, integrator=integrator)
        if tag in (NIBBLE_8, HEX_8):
            return self.packed(tag)
        if 1 <= tag < len(self.tokens.single):
            return self.tokens.single[tag]
        raise BinaryError(f"invalid token {tag}")

    def node(self) -> Node:
        size = self.list_size(self.byte())
        tag = self.read(as_string=True)
        if size == 0 or not isinstance(tag, str) or not tag:
            raise BinaryError("invalid node")
        attrs: dict[str, AttrValue] = {}
        for _ in range((size - 1) // 2):
            key = self.string_value()
            value = self.read(as_string=True)
            if value is not None and not isinstance(value, (str, JID)):
                raise BinaryError(f"attribute {key!r} has a list value")
            attrs[key] = value if value is not None else ""
        content = self.read(as_string=False) if size % 2 == 0 else None
        if isinstance(content, JID):
            content = str(content)
        return Node(tag, attrs, content)


def unmarshal(payload: bytes, tokens: TokenTables | None = None) -> Node:
    """Decode a frame payload (flags byte + body), by default with whatsmeow's tables."""
    if not payload:
        raise BinaryError("empty payload")
    body = payload[1:]
    if payload[0] & FLAG_COMPRESSED:
        try:
            body = zlib.decompress(body)
        except zlib.error as exc:
            raise BinaryError(f"bad zlib body: {exc}") from exc
    dec = _Decoder(body, tokens or load_tokens())
    node = dec.node()
    if dec.pos != len(body):
        raise BinaryError(f"{len(body) - dec.pos} leftover bytes after node")
    return node
