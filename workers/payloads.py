"""Turn neonize event protobufs into GoWA v9 webhook payloads (docs/webhook-payload.md)."""

from __future__ import annotations

from typing import Any

from neonize.proto import Neonize_pb2 as pb
from neonize.utils.jid import Jid2String
from neonize.utils.message import extract_text

from workers.lids import Directory
from workers.message_fields import special_fields
from workers.timefmt import rfc3339

RECEIPT_TYPES: dict[int, tuple[str, str]] = {
    pb.Receipt.DELIVERED: (
        "delivered",
        "means the message was delivered to the device (but the user might not have noticed).",
    ),
    pb.Receipt.INACTIVE: (
        "delivered",
        "means the message was delivered to the device (but the user might not have noticed).",
    ),
    pb.Receipt.READ: ("read", "the user opened the chat and saw the message."),
    pb.Receipt.PLAYED: ("played", "the user opened a view-once or voice message."),
    pb.Receipt.SENDER: ("sender", "sent by your other device."),
    pb.Receipt.RETRY: ("retry", "the recipient could not decrypt the message and asked again."),
}


def jid_str(jid: pb.JID) -> str:
    return Jid2String(jid) if (jid.User or jid.Server) else ""


def non_ad(jid: pb.JID) -> str:
    """The JID without its device part (what GoWA puts in ``from``/``chat_id``)."""
    if not (jid.User or jid.Server):
        return ""
    return f"{jid.User}@{jid.Server}" if jid.User else jid.Server


def sender_fields(source: pb.MessageSource, people: Directory | None = None) -> dict[str, Any]:
    """``from``/``from_lid``/``chat_id``(/``chat_lid``) of a message or receipt: the phone
    JID where it is known (the stanza's alternate address, else whatsmeow's LID map), the
    LID kept in its own field."""
    sender, alt = source.Sender, source.SenderAlt
    fields: dict[str, Any] = {}
    if sender.Server == "lid":
        pn = alt if alt.User and alt.Server != "lid" else _pn(people, sender)
        fields["from"] = non_ad(pn) if pn is not None else non_ad(sender)
        fields["from_lid"] = non_ad(sender)
    else:
        fields["from"] = non_ad(sender)
        if alt.Server == "lid":
            fields["from_lid"] = non_ad(alt)
    chat = source.Chat
    if chat.Server == "lid" and not source.IsGroup:
        if source.IsFromMe:
            peer = source.RecipientAlt if source.RecipientAlt.User else _pn(people, chat)
            fields["chat_id"] = non_ad(peer) if peer is not None else non_ad(chat)
        else:
            fields["chat_id"] = fields["from"]
        fields["chat_lid"] = non_ad(chat)
    else:
        fields["chat_id"] = non_ad(chat)
    return fields


def _pn(people: Directory | None, jid: pb.JID) -> pb.JID | None:
    return people.pn(jid) if people is not None else None


def with_display_name(
    payload: dict[str, Any], people: Directory | None, push_name: str = ""
) -> dict[str, Any]:
    """GoWA's ``sender_display_name``, present when ``from`` is a non-empty string."""
    if people is not None and payload.get("from"):
        payload["sender_display_name"] = people.display_name(payload["from"], push_name)
    return payload


# Parts of a message that carry no content of their own: group key distribution arrives
# as a separate Message event with only these set, ahead of the real one with the same id.
_ENVELOPE_ONLY = frozenset({"senderKeyDistributionMessage", "messageContextInfo"})


def carries_content(message: Any) -> bool:
    """False for key-distribution-only messages and protocol messages other than
    revoke/edit; GoWA sends no webhook for those."""
    fields = {descriptor.name for descriptor, _ in message.ListFields()}
    if not fields - _ENVELOPE_ONLY:
        return False
    if "protocolMessage" in fields:
        kind = message.protocolMessage.type
        return kind in (message.protocolMessage.REVOKE, message.protocolMessage.MESSAGE_EDIT)
    return True


def message_payload(
    event: pb.Message, people: Directory | None = None
) -> tuple[str, dict[str, Any]]:
    """The (event name, payload) GoWA would send for an incoming message."""
    info = event.Info
    payload: dict[str, Any] = {"id": info.ID, **sender_fields(info.MessageSource, people)}
    with_display_name(payload, people, info.Pushname)
    payload["from_name"] = info.Pushname
    payload["timestamp"] = rfc3339(info.Timestamp)
    payload["is_from_me"] = info.MessageSource.IsFromMe
    message = event.Message
    if message.HasField("reactionMessage"):
        reaction = message.reactionMessage
        payload["reaction"] = reaction.text
        payload["reacted_message_id"] = reaction.key.ID
        return "message.reaction", payload
    protocol = message.protocolMessage if message.HasField("protocolMessage") else None
    if protocol is not None and protocol.type == protocol.REVOKE:
        payload["revoked_message_id"] = protocol.key.ID
        payload["revoked_from_me"] = protocol.key.fromMe
        if protocol.key.remoteJID:
            payload["revoked_chat"] = protocol.key.remoteJID
        return "message.revoked", payload
    if protocol is not None and protocol.type == protocol.MESSAGE_EDIT:
        payload["original_message_id"] = protocol.key.ID
        payload["body"] = extract_text(protocol.editedMessage)
        return "message.edited", payload
    body = extract_text(message)
    if body:
        payload["body"] = body
    context = message.extendedTextMessage.contextInfo
    if message.HasField("extendedTextMessage") and context.stanzaID:
        payload["replied_to_id"] = context.stanzaID
        payload["quoted_body"] = extract_text(context.quotedMessage)
    payload.update(special_fields(event))
    return "message", payload


def receipt_payload(event: pb.Receipt, people: Directory | None = None) -> dict[str, Any]:
    kind, description = RECEIPT_TYPES.get(event.Type, ("unknown", "an unknown receipt type."))
    payload: dict[str, Any] = {
        "ids": list(event.MessageIDs),
        **sender_fields(event.MessageSource, people),
    }
    with_display_name(payload, people)
    payload["receipt_type"] = kind
    payload["receipt_type_description"] = description
    if event.Timestamp:
        payload["timestamp"] = rfc3339(event.Timestamp)
    return payload
