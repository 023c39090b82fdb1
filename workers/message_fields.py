"""The optional parts of GoWA's ``message`` payload (docs/webhook-payload.md, "Special
Message Types", "Special Flags" and "Media Messages"): media, shared contacts,
locations, view-once, forwarded, the Click-to-WhatsApp ad ``referral``.

Media is given in GoWA's form without auto-download (``{"url", ...}``, the caption also
in ``body``), even with ``auto_download_media``: the event is recorded before anything
else is done with the message, and the download follows it (``/message/{id}/download``
and the chat storage then name the file).

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


#: ``referral`` keys for the fields of ``ContextInfo.externalAdReply`` (set ones only).
REFERRAL = (
    ("ctwaClid", "ctwa_clid"),
    ("sourceURL", "source_url"),
    ("sourceID", "source_id"),
    ("ref", "ref"),
    ("sourceApp", "source_app"),
    ("title", "ad_title"),
    ("body", "ad_body"),
    ("thumbnailURL", "thumbnail_url"),
    ("originalImageURL", "original_image_url"),
    ("mediaURL", "media_url"),
    ("mediaType", "media_type"),
    ("showAdAttribution", "show_ad_attribution"),
    ("containsAutoReply", "contains_auto_reply"),
    ("automatedGreetingMessageShown", "automated_greeting_message_shown"),
    ("greetingMessageBody", "greeting_message_body"),
    ("clickToWhatsappCall", "click_to_whatsapp_call"),
    ("sourceType", "source_type"),
    ("adType", "ad_type"),
)


def referral(ad: Any) -> dict[str, Any]:
    """GoWA's ``referral``: strings when non-empty, flags and enums (by name) when set."""
    out: dict[str, Any] = {}
    for name, key in REFERRAL:
        field = ad.DESCRIPTOR.fields_by_name[name]
        value = getattr(ad, name)
        if field.enum_type is not None:
            if ad.HasField(name):
                out[key] = field.enum_type.values_by_number[value].name
        elif isinstance(value, bool):
            if ad.HasField(name):
                out[key] = value
        elif value:
            out[key] = value
    return out


#: GoWA's media keys: (payload key, message field, the fields given besides ``url``).
MEDIA = (
    ("audio", "audioMessage", ()),
    ("document", "documentMessage", (("filename", "fileName"),)),
    ("image", "imageMessage", (("caption", "caption"),)),
    ("sticker", "stickerMessage", ()),
    ("video", "videoMessage", (("caption", "caption"),)),
    ("video_note", "ptvMessage", (("caption", "caption"),)),
)


def media_fields(message: e2e.Message) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, name, extra in MEDIA:
        if message.HasField(name):
            media = getattr(message, name)
            fields[key] = {"url": media.URL, **{k: getattr(media, f) for k, f in extra}}
    return fields


def _context_info(message: e2e.Message) -> Any:
    for _, value in message.ListFields():
        if hasattr(value, "contextInfo") and value.HasField("contextInfo"):
            return value.contextInfo
    return None


def special_fields(event: pb.Message) -> dict[str, Any]:
    """The media keys, ``contact``, ``contacts_array``, ``location``, ``live_location``,
    ``view_once``, ``forwarded`` and ``referral``, each only when the message has it."""
    message = event.Message
    fields = media_fields(message)
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
    ad = referral(context.externalAdReply) if context is not None else {}
    if ad:
        fields["referral"] = ad
    return fields
