"""WhatsApp JIDs as the sandbox sees them (mirrors whatsmeow's ``types.JID``).

JID-valued attributes must be encoded as JID tokens, never as strings (the client
type-asserts them), so the codec needs a distinct type rather than plain ``str``.
"""

from __future__ import annotations

from dataclasses import dataclass

USER_SERVER = "s.whatsapp.net"
LID_SERVER = "lid"
GROUP_SERVER = "g.us"
HOSTED_SERVER = "hosted"
HOSTED_LID_SERVER = "hosted.lid"
MESSENGER_SERVER = "msgr"
INTEROP_SERVER = "interop"
BROADCAST_SERVER = "broadcast"

#: AD_JID domain byte for each server that uses the AD form.
AD_DOMAINS = {USER_SERVER: 0, LID_SERVER: 1, HOSTED_SERVER: 128, HOSTED_LID_SERVER: 129}
AD_SERVERS = {v: k for k, v in AD_DOMAINS.items()}


@dataclass(frozen=True, slots=True)
class JID:
    """A WhatsApp address: ``user[.agent][:device]@server``."""

    user: str = ""
    server: str = USER_SERVER
    device: int = 0
    agent: int = 0
    integrator: int = 0

    @classmethod
    def parse(cls, text: str) -> JID:
        """Parse the textual form produced by :meth:`__str__`."""
        if "@" not in text:
            return cls("", text)
        user, server = text.split("@", 1)
        device = agent = 0
        if ":" in user:
            user, dev = user.split(":", 1)
            device = int(dev)
        if "." in user and server == USER_SERVER:
            user, raw_agent = user.split(".", 1)
            agent = int(raw_agent)
        return cls(user, server, device, agent)

    @classmethod
    def pn(cls, phone: str, device: int = 0) -> JID:
        """Phone-number JID (``phone[:device]@s.whatsapp.net``)."""
        return cls(phone, USER_SERVER, device)

    @classmethod
    def lid(cls, lid_user: str, device: int = 0) -> JID:
        """Hidden-user (LID) JID (``lid[:device]@lid``)."""
        return cls(lid_user, LID_SERVER, device)

    def user_jid(self) -> JID:
        """The same address without device/agent (whatsmeow's ``ToNonAD``)."""
        return JID(self.user, self.server)

    @property
    def is_ad_form(self) -> bool:
        """Whether the binary encoder must use the AD_JID token for this JID."""
        if self.server in (HOSTED_SERVER, HOSTED_LID_SERVER):
            return True
        return self.server in (USER_SERVER, LID_SERVER) and (self.device > 0 or self.agent > 0)

    def __str__(self) -> str:
        if self.agent:
            return f"{self.user}.{self.agent}:{self.device}@{self.server}"
        if self.device:
            return f"{self.user}:{self.device}@{self.server}"
        return f"{self.user}@{self.server}" if self.user else self.server


SERVER_JID = JID("", USER_SERVER)
