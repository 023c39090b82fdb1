"""Recipients as the API names them (a phone number or a JID string) turned into JIDs."""

from __future__ import annotations

from neonize.proto import Neonize_pb2 as pb
from neonize.utils.jid import build_jid

from gowa_py import protocol as p
from workers.errors import SessionError


def parse_jid(value: str) -> pb.JID:
    """A phone number or a JID string (``user[:device]@server``) as a neonize JID."""
    value = value.strip()
    if not value:
        raise SessionError(p.ErrorCode.INVALID_JID, "recipient is empty")
    if "@" not in value:
        digits = value.lstrip("+").replace(" ", "").replace("-", "")
        if not (digits.isascii() and digits.isdigit()) or not 5 <= len(digits) <= 20:
            raise SessionError(p.ErrorCode.INVALID_JID, f"invalid phone number {value!r}")
        return build_jid(digits)
    user, _, server = value.partition("@")
    if not server or not user or "@" in server:
        raise SessionError(p.ErrorCode.INVALID_JID, f"invalid JID {value!r}")
    device = 0
    if ":" in user:
        user, _, raw_device = user.partition(":")
        if not (raw_device.isascii() and raw_device.isdigit()):
            raise SessionError(p.ErrorCode.INVALID_JID, f"invalid JID {value!r}")
        device = int(raw_device)
    return pb.JID(User=user, Server=server, Device=device, RawAgent=0, Integrator=0, IsEmpty=False)
