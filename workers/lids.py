"""LID ↔ phone-number resolution through whatsmeow's own LID map (its ``whatsmeow.db``).

WhatsApp addresses more and more stanzas by LID (``…@lid``); clients written for GoWA
expect phone JIDs (``…@s.whatsapp.net``), and GoWA resolves a LID wherever whatsmeow
knows the phone behind it. A LID whose phone is unknown stays a LID.
"""

from __future__ import annotations

from typing import Any

from neonize.proto import Neonize_pb2 as pb
from neonize.utils.jid import build_jid

LID_SERVER = "lid"
PN_SERVER = "s.whatsapp.net"


def pn_for(client: Any, jid: pb.JID) -> pb.JID | None:
    """The phone-number JID (without device) of a LID, or ``None`` when it is unknown."""
    if jid.Server != LID_SERVER or not jid.User:
        return None
    try:
        found = client.get_pn_from_lid(build_jid(jid.User, LID_SERVER))
    except Exception:
        return None
    return found if found.User and found.Server == PN_SERVER else None


def lid_for(client: Any, jid: pb.JID) -> pb.JID | None:
    """The LID (without device) of a phone-number JID, or ``None`` when it is unknown."""
    if jid.Server != PN_SERVER or not jid.User:
        return None
    try:
        found = client.get_lid_from_pn(build_jid(jid.User, PN_SERVER))
    except Exception:
        return None
    return found if found.User and found.Server == LID_SERVER else None


def bare(jid: pb.JID) -> str:
    """``user@server`` without device or agent (the form GoWA puts in events)."""
    return f"{jid.User}@{jid.Server}" if jid.User else jid.Server


def split(client: Any, jid: pb.JID) -> tuple[str, str]:
    """``(phone JID or the LID when unknown, LID or "")`` of any user JID, without device."""
    if jid.Server == LID_SERVER:
        pn = pn_for(client, jid)
        return (bare(pn), bare(jid)) if pn is not None else (bare(jid), bare(jid))
    if not (jid.User or jid.Server):
        return "", ""
    lid = lid_for(client, jid)
    return bare(jid), bare(lid) if lid is not None else ""


class Directory:
    """What one account knows about the people in its events: the phone behind a LID
    and a display name (GoWA's ``sender_display_name``)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def pn(self, jid: pb.JID) -> pb.JID | None:
        return pn_for(self.client, jid)

    def display_name(self, jid: str, push_name: str = "") -> str:
        """GoWA's order: saved name, the event's push name, stored push name, business
        name, the number; for the account itself its own push name first."""
        user, _, server = jid.partition("@")
        user = user.split(":")[0].split(".")[0]
        if not user:
            return jid
        try:
            me = self.client.get_me()
        except Exception:
            me = None
        if me is not None and user in (me.JID.User, me.LID.User):
            return me.PushName or user
        try:
            contact = self.client.contact.get_contact(build_jid(user, server))
        except Exception:
            contact = None
        if contact is not None and contact.Found and contact.FullName:
            return str(contact.FullName)
        if push_name:
            return push_name
        if contact is not None and contact.Found:
            return str(contact.PushName or contact.BusinessName or user)
        return user
