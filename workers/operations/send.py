"""GoWA's ``send`` tag: text, media, contact, link, location, poll and presence."""

from __future__ import annotations

from typing import Any

from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as e2e

from gowa_py import operations as ops
from gowa_py import protocol as p
from workers.operations.context import Context, fail, handles, ok
from workers.operations.media import check_pixels, frame_count, require_ffmpeg, upload_of
from workers.operations.messages import chat_of, decorate, reply_context, send


@handles(ops.SendMessage)
def send_message(ctx: Context, op: ops.SendMessage) -> p.OperationResult:
    _, chat = chat_of(op.phone)
    message = decorate(
        e2e.Message(conversation=op.message),
        reply=reply_context(ctx, chat, op.reply_message_id),
        forwarded=op.is_forwarded,
        duration=op.duration,
        mentions=op.mentions,
    )
    return send(ctx, op.phone, message, op.message, kind="text")


def _send_media(
    ctx: Context, op: Any, message: e2e.Message, body: str, kind: str, label: str
) -> p.OperationResult:
    _, chat = chat_of(op.phone)
    message = decorate(
        message,
        reply=reply_context(ctx, chat, getattr(op, "reply_message_id", None)),
        forwarded=op.is_forwarded,
        duration=op.duration,
    )
    return send(ctx, op.phone, message, body, kind=kind, label=label)


@handles(ops.SendImage)
def send_image(ctx: Context, op: ops.SendImage) -> p.OperationResult:
    upload = upload_of(op, "image")
    chat_of(op.phone)
    check_pixels(upload.data, "image")
    message = ctx.client.build_image_message(
        upload.data, caption=op.caption or None, viewonce=op.view_once
    )
    return _send_media(ctx, op, message, op.caption or "", "image", "Image")


@handles(ops.SendVideo)
def send_video(ctx: Context, op: ops.SendVideo) -> p.OperationResult:
    upload = upload_of(op, "video")
    chat_of(op.phone)
    require_ffmpeg("sending a video")
    message = ctx.client.build_video_message(
        upload.data,
        caption=op.caption or None,
        viewonce=op.view_once,
        gifplayback=op.gif_playback,
    )
    return _send_media(ctx, op, message, op.caption or "", "video", "Video")


@handles(ops.SendAudio)
def send_audio(ctx: Context, op: ops.SendAudio) -> p.OperationResult:
    upload = upload_of(op, "audio")
    chat_of(op.phone)
    require_ffmpeg("sending audio")
    message = ctx.client.build_audio_message(upload.data, ptt=op.ptt)
    return _send_media(ctx, op, message, "", "audio", "Audio")


@handles(ops.SendFile)
def send_file(ctx: Context, op: ops.SendFile) -> p.OperationResult:
    upload = upload_of(op, "file")
    chat_of(op.phone)
    filename = upload.filename or "file"
    message = ctx.client.build_document_message(
        upload.data,
        caption=op.caption or None,
        title=filename,
        filename=filename,
        mimetype=upload.content_type or None,
    )
    return _send_media(ctx, op, message, op.caption or "", "document", "Document")


@handles(ops.SendSticker)
def send_sticker(ctx: Context, op: ops.SendSticker) -> p.OperationResult:
    import magic

    upload = upload_of(op, "sticker")
    chat_of(op.phone)
    check_pixels(upload.data, "sticker")
    mime = magic.from_buffer(upload.data, mime=True)
    if not mime.startswith("image/") or mime == "image/gif":
        require_ffmpeg(f"converting a {mime} sticker")
    # neonize keeps only a GIF's first frame unless told it is animated (then ffmpeg
    # converts every frame and the sticker is marked animated).
    animated = mime == "image/gif" and frame_count(upload.data) > 1
    message = ctx.client.build_sticker_message(upload.data, animated_gif=animated)
    return _send_media(ctx, op, message, "", "sticker", "Sticker")


@handles(ops.SendContact)
def send_contact(ctx: Context, op: ops.SendContact) -> p.OperationResult:
    vcard = (
        "BEGIN:VCARD\nVERSION:3.0\n"
        f"N:;{op.contact_name};;;\nFN:{op.contact_name}\n"
        f"TEL;type=CELL;waid={op.contact_phone.lstrip('+')}:{op.contact_phone}\nEND:VCARD"
    )
    message = e2e.Message(
        contactMessage=e2e.ContactMessage(displayName=op.contact_name, vcard=vcard)
    )
    return _send_media(ctx, op, message, op.contact_name, "contact", "Contact")


@handles(ops.SendLink)
def send_link(ctx: Context, op: ops.SendLink) -> p.OperationResult:
    text = f"{op.caption}\n{op.link}" if op.caption else op.link
    message = e2e.Message(
        extendedTextMessage=e2e.ExtendedTextMessage(
            text=text, matchedText=op.link, title=op.caption or op.link
        )
    )
    return _send_media(ctx, op, message, text, "link", "Link")


@handles(ops.SendLocation)
def send_location(ctx: Context, op: ops.SendLocation) -> p.OperationResult:
    message = e2e.Message(
        locationMessage=e2e.LocationMessage(
            degreesLatitude=op.latitude, degreesLongitude=op.longitude
        )
    )
    return _send_media(
        ctx, op, message, f"{op.latitude},{op.longitude}", "location", "Send location"
    )


@handles(ops.SendPoll)
def send_poll(ctx: Context, op: ops.SendPoll) -> p.OperationResult:
    from neonize.utils.enum import VoteType

    chat_of(op.phone)
    if op.max_answer > len(op.options):
        raise fail(p.ErrorCode.VALIDATION_ERROR, "max_answer cannot exceed the number of options")
    vote = VoteType.SINGLE if op.max_answer == 1 else VoteType.MULTIPLE
    message = ctx.client.build_poll_vote_creation(op.question, op.options, vote)
    message = decorate(message, duration=op.duration)
    return send(ctx, op.phone, message, op.question, kind="poll", label="Poll")


@handles(ops.SendPresence)
def send_presence(ctx: Context, op: ops.SendPresence) -> p.OperationResult:
    from neonize.utils.enum import Presence

    ctx.client.send_presence(Presence(op.type.encode()))
    return ok(
        {"message_id": "", "status": f"Send presence success {op.type}"},
        f"Send presence success {op.type}",
    )


@handles(ops.SendChatPresence)
def send_chat_presence(ctx: Context, op: ops.SendChatPresence) -> p.OperationResult:
    from neonize.utils.enum import ChatPresence, ChatPresenceMedia

    jid, _ = chat_of(op.phone)
    state = (
        ChatPresence.CHAT_PRESENCE_COMPOSING
        if op.action == "start"
        else ChatPresence.CHAT_PRESENCE_PAUSED
    )
    ctx.client.send_chat_presence(jid, state, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT)
    status = f"Send chat presence {op.action} typing success {op.phone}"
    return ok({"message_id": "", "status": status}, status)
