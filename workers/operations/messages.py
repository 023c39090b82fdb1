"""Building, sending and finding messages: what the handlers of several tags share."""

from __future__ import annotations

import time
from typing import Any

from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as e2e
from neonize.utils.message import extract_text

from gowa_py import operations as ops
from gowa_py import protocol as p
from workers import payloads
from workers.jid import parse_jid
from workers.operations.context import Context, fail, ok
from workers.timefmt import rfc3339

# Message content fields that carry media, and GoWA's name for each kind.
MEDIA_FIELDS = {
    "imageMessage": "image",
    "videoMessage": "video",
    "audioMessage": "audio",
    "documentMessage": "document",
    "stickerMessage": "sticker",
}
# Content fields with a contextInfo (reply, forward, expiration, mentions go there).
CONTEXT_FIELDS = (
    "extendedTextMessage",
    *MEDIA_FIELDS,
    "contactMessage",
    "locationMessage",
    "pollCreationMessage",
    "pollCreationMessageV3",
)


def seconds(timestamp: float) -> float:
    return timestamp / 1000 if timestamp > 1e12 else float(timestamp or time.time())


def chat_of(value: str) -> tuple[pb.JID, str]:
    """A recipient as a JID and as the chat key the store uses (no device part)."""
    jid = parse_jid(value)
    return jid, payloads.non_ad(jid)


def describe(message: e2e.Message) -> str:
    """The text GoWA stores for a message: its text, a caption, or a short description."""
    text = extract_text(message)
    if text:
        return text
    for field in MEDIA_FIELDS:
        if message.HasField(field):
            return getattr(getattr(message, field), "caption", "") or ""
    if message.HasField("locationMessage"):
        location = message.locationMessage
        return f"{location.degreesLatitude},{location.degreesLongitude}"
    if message.HasField("contactMessage"):
        return message.contactMessage.displayName
    for field in ("pollCreationMessage", "pollCreationMessageV3"):
        if message.HasField(field):
            return getattr(message, field).name
    return ""


def media_info(message: e2e.Message) -> dict[str, Any]:
    """Media metadata for the store (kind, mimetype, file name, URL, size)."""
    for field, kind in MEDIA_FIELDS.items():
        if message.HasField(field):
            media = getattr(message, field)
            return {
                "media_type": kind,
                "mimetype": media.mimetype,
                "filename": getattr(media, "fileName", "") or "",
                "url": media.URL,
                "file_length": media.fileLength,
            }
    return {}


def decorate(
    message: e2e.Message,
    *,
    reply: e2e.ContextInfo | None = None,
    forwarded: bool = False,
    duration: int | None = None,
    mentions: list[str] | None = None,
) -> e2e.Message:
    """Put reply, forward, expiration and mentions into the content's contextInfo."""
    if not (reply or forwarded or duration or mentions):
        return message
    if message.HasField("conversation"):
        message = e2e.Message(
            extendedTextMessage=e2e.ExtendedTextMessage(text=message.conversation)
        )
    for field in CONTEXT_FIELDS:
        if message.HasField(field):
            context = getattr(message, field).contextInfo
            if reply is not None:
                context.MergeFrom(reply)
            if forwarded:
                context.isForwarded = True
                context.forwardingScore = max(context.forwardingScore, 1)
            if duration:
                context.expiration = duration
            for mention in mentions or []:
                context.mentionedJID.append(payloads.jid_str(parse_jid(mention)))
            break
    return message


def reply_context(ctx: Context, chat: str, message_id: str | None) -> e2e.ContextInfo | None:
    """contextInfo quoting a stored message (or only its id when we never saw it)."""
    if not message_id:
        return None
    stored = ctx.store.message(message_id, chat)
    context = e2e.ContextInfo(stanzaID=message_id)
    if stored is not None:
        context.participant = (
            payloads.jid_str(ctx.me()) if stored["is_from_me"] else stored["sender_jid"]
        )
        if stored["raw"]:
            context.quotedMessage.ParseFromString(stored["raw"])
    else:
        context.participant = chat
    return context


def send(
    ctx: Context,
    to: str,
    message: e2e.Message,
    body: str,
    *,
    kind: str,
    label: str = "Message",
) -> p.OperationResult:
    """Send, record in the chat store, publish ``message.sent``; GoWA's send result."""
    jid, chat = chat_of(to)
    response = ctx.client.send_message(jid, message)
    timestamp = seconds(response.Timestamp)
    ctx.session.touch()
    sent = response.Message if response.HasField("Message") else message
    with ctx.store.transaction():  # the message and its event in one commit
        ctx.store.add_message(
            id=response.ID,
            chat_jid=chat,
            sender_jid=ctx.session.me.jid if ctx.session.me else "",
            timestamp=timestamp,
            is_from_me=True,
            content=body,
            status="sent",
            media=media_info(sent),
            raw=sent.SerializeToString(),
        )
        ctx.emit(
            "message.sent",
            {
                "id": response.ID,
                "to": to,
                "body": body,
                "type": kind,
                "timestamp": rfc3339(timestamp),
            },
        )
    return ok(
        {
            "message_id": response.ID,
            "status": f"{label} sent to {to} (server timestamp: {rfc3339(timestamp)})",
        },
        f"{label} sent to {to}",
    )


def stored_message(ctx: Context, op: ops.MessageTarget) -> tuple[pb.JID, str, dict[str, Any]]:
    jid, chat = chat_of(op.phone)
    stored = ctx.store.message(op.message_id, chat)
    if stored is None:
        raise fail(
            p.ErrorCode.NOT_FOUND, f"message {op.message_id!r} is not in the chat storage of {chat}"
        )
    return jid, chat, stored


def sender_of(ctx: Context, chat_jid: pb.JID, chat: str, message_id: str) -> pb.JID:
    """Who wrote a message (reactions and revokes name the original sender)."""
    stored = ctx.store.message(message_id, chat)
    if stored is None or stored["is_from_me"]:
        return ctx.me() if stored is not None else chat_jid
    return parse_jid(stored["sender_jid"] or chat)
