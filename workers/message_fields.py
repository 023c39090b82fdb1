"""The optional parts of GoWA's ``message`` payload (docs/webhook-payload.md, "Special
Message Types" and "Special Flags"): shared contacts, locations, view-once, forwarded.

Locations are given as GoWA gives them, the protobuf with its JSON field names
(``degreesLatitude``...); contacts as ``displayName``, ``vcard`` and the vCard's number.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict
from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as e2e


def vcard_phone(vcard: str) -> str:
    """The number of a vCard's first ``TEL`` line (folded lines joined), GoWA's way."""
    lines: list[str] = []
    for raw in vcard.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += line
        else:
            lines.append(line)
    for line in lines:
        if line.upper().startswith("TEL") and ":" in line:
            return line.rsplit(":", 1)[1].strip()
    return ""


def contact_json(contact: e2e.ContactMessage) -> dict[str, str]:
    return {
        "displayName": contact.displayName,
        "vcard": contact.vcard,
        "phone_number": vcard_phone(contact.vcard),
    }


def _context_info(message: e2e.Message) -> Any:
    for _, value in message.ListFields():
        if hasattr(value, "contextInfo") and value.HasField("contextInfo"):
            return value.contextInfo
    return None


def special_fields(event: pb.Message) -> dict[str, Any]:
    """``contact``, ``contacts_array``, ``location``, ``live_location``, ``view_once`` and
    ``forwarded``, each only when the message has it."""
    message = event.Message
    fields: dict[str, Any] = {}
    if message.HasField("contactMessage"):
        fields["contact"] = contact_json(message.contactMessage)
    if message.HasField("contactsArrayMessage"):
        fields["contacts_array"] = [contact_json(c) for c in message.contactsArrayMessage.contacts]
    if message.HasField("liveLocationMessage"):
        fields["live_location"] = MessageToDict(message.liveLocationMessage)
    if message.HasField("locationMessage"):
        fields["location"] = MessageToDict(message.locationMessage)
    if event.IsViewOnce:
        fields["view_once"] = True
    context = _context_info(message)
    if context is not None and context.isForwarded:
        fields["forwarded"] = True
    return fields
