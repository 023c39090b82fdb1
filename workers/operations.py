"""Worker side of the GoWA operations: one small handler per ``gowa_py.operations`` struct.

Handlers run in a thread (neonize calls block) and return GoWA's ``results`` shape. A
neonize failure becomes ``WHATSAPP_ERROR`` (502) with WhatsApp's message; a missing
message or an unsupported call has its own code, so the gateway never answers 500 for a
WhatsApp-side problem. The same module keeps the chat store current from neonize events
and runs the per-session automations (auto-reply, auto-read, auto-download, call reject).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import shutil
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as e2e
from neonize.utils.message import extract_text

from gowa_py import operations as ops
from gowa_py import protocol as p
from workers import payloads
from workers.chatstore import ChatStore
from workers.session import SessionError, parse_jid
from workers.timefmt import rfc3339

if TYPE_CHECKING:
    from workers.session import WhatsAppSession

log = logging.getLogger("gowa.worker.operations")

OpT = TypeVar("OpT", bound=ops.Op)
Handler = Callable[["Context", Any], p.OperationResult]
HANDLERS: dict[type[ops.Op], tuple[Handler, bool]] = {}

# Message content fields that carry media, and GoWA's name for each kind.
#: Pixels of a picture sent through the API (image, sticker): phone-camera photos pass.
MAX_IMAGE_PIXELS = 50_000_000
#: A file extension taken from the sender's file name or mimetype.
SAFE_EXTENSION = re.compile(r"[A-Za-z0-9]{1,10}")
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
RECEIPT_STATUS = {
    pb.Receipt.DELIVERED: "delivered",
    pb.Receipt.INACTIVE: "delivered",
    pb.Receipt.READ: "read",
    pb.Receipt.READ_SELF: "read",
    pb.Receipt.PLAYED: "played",
}


def handles(
    op_type: type[OpT], *, connected: bool = True
) -> Callable[
    [Callable[[Context, OpT], p.OperationResult]], Callable[[Context, OpT], p.OperationResult]
]:
    """Register the handler of one operation; ``connected`` ones need a live session."""

    def register(
        func: Callable[[Context, OpT], p.OperationResult],
    ) -> Callable[[Context, OpT], p.OperationResult]:
        HANDLERS[op_type] = (func, connected)
        return func

    return register


def ok(results: Any = None, message: str = "Success") -> p.OperationResult:
    return p.OperationResult(results=results, message=message)


def fail(code: str, message: str) -> SessionError:
    return SessionError(code, message)


class Context:
    """What a handler needs: the session, its chat store, its settings and media folder."""

    def __init__(
        self,
        session: WhatsAppSession,
        store: ChatStore,
        settings: ops.ApplySettings,
        session_dir: Path,
        emit: Callable[[str, dict[str, Any]], None],
        max_download_bytes: int = 100 * 1024 * 1024,
    ) -> None:
        self.session = session
        self.client = session.client
        self.store = store
        self.settings = settings
        self.media_dir = session_dir / "media"
        self.max_download_bytes = max_download_bytes
        self.emit = emit
        self._background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="auto")

    def run(self, op: ops.Op) -> p.OperationResult:
        """Run one operation; blocks while its handler waits for WhatsApp."""
        entry = HANDLERS.get(type(op))
        if entry is None:
            raise fail(p.ERR_NOT_SUPPORTED, f"{type(op).__name__} is not handled by workers")
        handler, connected = entry
        if connected:
            self.session._require_connected()
        try:
            return handler(self, op)
        except SessionError:
            raise
        except Exception as exc:
            log.warning("%s failed: %s: %s", type(op).__name__, type(exc).__name__, exc)
            raise fail(p.ERR_WHATSAPP, f"{type(exc).__name__}: {exc}".strip()) from exc

    def close(self) -> None:
        self._background.shutdown(wait=False, cancel_futures=True)

    def me(self) -> pb.JID:
        me = self.session.me
        if me is None:
            raise fail(p.ERR_NOT_LOGGED_IN, "session is not logged in")
        return parse_jid(me.jid)

    # ------------------------------------------------------------ events

    def observe(self, event: Any) -> None:
        """neonize event observer (Go thread): keep the store current, run automations."""
        try:
            if isinstance(event, pb.Message):
                self._on_message(event)
            elif isinstance(event, pb.Receipt):
                status = RECEIPT_STATUS.get(event.Type)
                if status:
                    self.store.set_status(list(event.MessageIDs), status)
            elif isinstance(event, pb.Connected):
                self._background.submit(self._presence_on_connect)
        except Exception:
            log.exception("could not record %s", type(event).__name__)

    def on_call_offer(self, _client: Any, event: pb.CallOffer) -> None:
        meta = event.basicCallMeta
        caller = payloads.non_ad(meta.callCreator) or payloads.non_ad(getattr(meta, "from"))
        self.emit(
            "call.offer",
            {"call_id": meta.callID, "from": caller, "timestamp": rfc3339(meta.timestamp)},
        )
        if self.settings.auto_reject_call:
            self._background.submit(self._reject, getattr(meta, "from"), meta.callID)

    def _reject(self, caller: pb.JID, call_id: str) -> None:
        try:
            self.client.reject_call(caller, call_id)
        except Exception as exc:
            log.warning("auto-reject of call %s failed: %s", call_id, exc)

    def _presence_on_connect(self) -> None:
        from neonize.utils.enum import Presence

        choice = self.settings.presence_on_connect
        if choice not in ("available", "unavailable"):
            return
        try:
            self.client.send_presence(Presence(choice.encode()))
        except Exception as exc:
            log.warning("presence on connect failed: %s", exc)

    def _on_message(self, event: pb.Message) -> None:
        info, message = event.Info, event.Message
        fields = payloads._sender_fields(info.MessageSource)
        chat, sender = fields["chat_id"], fields["from"]
        timestamp = _seconds(info.Timestamp)
        from_me = info.MessageSource.IsFromMe
        if message.HasField("reactionMessage"):
            reaction = message.reactionMessage
            self.store.set_reaction(chat, reaction.key.ID, sender, reaction.text, timestamp)
            return
        if message.HasField("protocolMessage"):
            protocol = message.protocolMessage
            if protocol.type == protocol.REVOKE:
                self.store.revoke(chat, protocol.key.ID)
            elif protocol.type == protocol.MESSAGE_EDIT:
                self.store.edit(chat, protocol.key.ID, extract_text(protocol.editedMessage))
            return
        content = describe(message)
        media = media_info(message)
        if not content and not media:
            return
        self.store.add_message(
            id=info.ID,
            chat_jid=chat,
            sender_jid=sender,
            sender_name=info.Pushname,
            chat_name="" if info.MessageSource.IsGroup or from_me else info.Pushname,
            timestamp=timestamp,
            is_from_me=from_me,
            content=content,
            status="sent" if from_me else "",
            media=media,
            raw=message.SerializeToString(),
        )
        if from_me:
            return
        if media and self.settings.auto_download_media:
            self._background.submit(self._download, chat, info.ID, message)
        if self.settings.auto_mark_read:
            self._background.submit(self._mark_read, event)
        reply = self.settings.auto_reply
        if (
            reply
            and not info.MessageSource.IsGroup
            and info.MessageSource.Chat.Server != "broadcast"
        ):
            self._background.submit(self._auto_reply, chat, reply)

    def _download(self, chat: str, message_id: str, message: e2e.Message) -> None:
        try:
            download_to_disk(self, chat, message_id, message)
        except Exception as exc:
            log.warning("auto-download of %s failed: %s", message_id, exc)

    def _mark_read(self, event: pb.Message) -> None:
        from neonize.utils.enum import ReceiptType

        source = event.Info.MessageSource
        try:
            self.client.mark_read(
                event.Info.ID, chat=source.Chat, sender=source.Sender, receipt=ReceiptType.READ
            )
        except Exception as exc:
            log.warning("auto-read failed: %s", exc)

    def _auto_reply(self, chat: str, text: str) -> None:
        try:
            send(self, chat, e2e.Message(conversation=text), text, kind="text")
        except Exception as exc:
            log.warning("auto-reply to %s failed: %s", chat, exc)


# ------------------------------------------------------------------ helpers


def _seconds(timestamp: float) -> float:
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
    timestamp = _seconds(response.Timestamp)
    ctx.session._touch()
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


def require_ffmpeg(what: str) -> None:
    if shutil.which("ffmpeg") is None:
        raise fail(
            p.ERR_FFMPEG,
            f"{what} needs ffmpeg, which is not installed on this server "
            "(install it, e.g. `apt-get install ffmpeg`)",
        )


def upload_of(op: Any, field: str) -> ops.Upload:
    upload = getattr(op, field)
    if upload is None or not upload.data:
        raise fail(p.ERR_BAD_REQUEST, f"{field} or {field}_url is required")
    return upload


def check_pixels(data: bytes, what: str) -> None:
    """Refuse a picture whose header promises more than ``MAX_IMAGE_PIXELS``.

    neonize decodes a whole image to draw its thumbnail (a sticker, to convert it), and a
    decoded picture takes 3-4 bytes a pixel whatever its file size: a small PNG of zeros
    can ask for gigabytes. Opening reads only the header, so this costs nothing. What PIL
    cannot identify is left to neonize to refuse.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        width = height = MAX_IMAGE_PIXELS
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return
    if width * height > MAX_IMAGE_PIXELS:
        raise fail(
            p.ERR_BAD_REQUEST,
            f"{what} of {width}x{height} pixels is over the limit of "
            f"{MAX_IMAGE_PIXELS / 1e6:g} megapixels; scale it down",
        )


def stored_message(ctx: Context, op: ops.MessageTarget) -> tuple[pb.JID, str, dict[str, Any]]:
    jid, chat = chat_of(op.phone)
    stored = ctx.store.message(op.message_id, chat)
    if stored is None:
        raise fail(
            p.ERR_NOT_FOUND, f"message {op.message_id!r} is not in the chat storage of {chat}"
        )
    return jid, chat, stored


def sender_of(ctx: Context, chat_jid: pb.JID, chat: str, message_id: str) -> pb.JID:
    """Who wrote a message (reactions and revokes name the original sender)."""
    stored = ctx.store.message(message_id, chat)
    if stored is None or stored["is_from_me"]:
        return ctx.me() if stored is not None else chat_jid
    return parse_jid(stored["sender_jid"] or chat)


def app_state(ctx: Context, kind: int, index: list[str], version: int, **action: Any) -> None:
    """Send one app-state mutation (pin, archive, star, delete-for-me) to our other devices."""
    from neonize.proto.waSyncAction.WAWebProtobufSyncAction_pb2 import SyncActionValue

    now = int(time.time())
    value = SyncActionValue(timestamp=now * 1000, **action)
    patch = pb.PatchInfo(
        Timestamp=now,
        Type=kind,
        Mutations=[pb.MutationInfo(Index=index, Version=version, Value=value)],
    )
    ctx.client.send_app_state(patch)


def download_to_disk(ctx: Context, chat: str, message_id: str, message: e2e.Message) -> Path:
    info = media_info(message)
    size, limit = info.get("file_length") or 0, ctx.max_download_bytes
    if size > limit:
        raise fail(
            p.ERR_TOO_LARGE,
            f"media of {size / 2**20:.1f} MB is over the {limit / 2**20:.0f} MB download limit",
        )
    data = ctx.client.download_any(message)
    path = media_path(ctx.media_dir, info.get("media_type", "file"), chat, message_id, info)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    ctx.store.set_flag(chat, message_id, "media_path", str(path))
    return path


def media_path(
    media_dir: Path, kind: str, chat: str, message_id: str, info: dict[str, Any]
) -> Path:
    """Where a message's media is saved: nothing the sender chose names a folder.

    The message id and the file name come from the peer (an id ``../../whatsmeow`` once
    overwrote the session's key store), so the name is a hash of chat and id, the
    extension only letters and digits, and the result is checked to stay in ``media_dir``.
    """
    digest = hashlib.sha256(f"{chat}\0{message_id}".encode()).hexdigest()[:32]
    suffix = _extension(info.get("mimetype", ""), info.get("filename", ""))
    path = media_dir / kind / f"{digest}{suffix}"
    if not path.resolve().is_relative_to(media_dir.resolve()):
        raise fail(p.ERR_BAD_REQUEST, f"media path {path} is outside {media_dir}")
    return path


def _extension(mimetype: str, filename: str) -> str:
    """``.ext`` from the sender's file name or mimetype, if it is a plain one."""
    import mimetypes

    candidates = [filename.rsplit(".", 1)[1]] if "." in filename else []
    guessed = mimetypes.guess_extension(mimetype.split(";")[0].strip()) or ""
    candidates.append(guessed.lstrip("."))
    for candidate in candidates:
        if SAFE_EXTENSION.fullmatch(candidate):
            return f".{candidate}"
    return ".bin"


def _time_arg(value: str | None, name: str) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise fail(p.ERR_BAD_REQUEST, f"{name} must be an RFC 3339 time") from None


def group_jid(value: str) -> pb.JID:
    jid = parse_jid(value if "@" in value else f"{value}@g.us")
    if jid.Server != "g.us":
        raise fail(p.ERR_INVALID_JID, f"{value!r} is not a group JID (…@g.us)")
    return jid


def invite_code(link: str) -> str:
    return link.strip().rstrip("/").rsplit("/", 1)[-1]


# -------------------------------------------------------------------- user


@handles(ops.UserInfo)
def user_info(ctx: Context, op: ops.UserInfo) -> p.OperationResult:
    jid, _ = chat_of(op.phone)
    data = []
    for entry in ctx.client.get_user_info(jid):
        info = entry.UserInfo
        data.append(
            {
                "verified_name": info.VerifiedName.Details.verifiedName
                if info.HasField("VerifiedName")
                else "",
                "status": info.Status,
                "picture_id": info.PictureID,
                "devices": [
                    {
                        "User": device.User,
                        "Agent": device.RawAgent,
                        "Device": "",
                        "Server": device.Server,
                        "AD": bool(device.Device),
                    }
                    for device in info.Devices
                ],
            }
        )
    return ok({"data": data}, "Success get user info")


@handles(ops.UserAvatar)
def user_avatar(ctx: Context, op: ops.UserAvatar) -> p.OperationResult:
    jid, _ = chat_of(op.phone)
    params = pb.GetProfilePictureParams(Preview=op.is_preview, IsCommunity=op.is_community)
    picture = ctx.client.get_profile_picture(jid, params)
    return ok({"url": picture.URL, "id": picture.ID, "type": picture.Type}, "Success get avatar")


@handles(ops.ChangeAvatar)
def change_avatar(ctx: Context, op: ops.ChangeAvatar) -> p.OperationResult:
    ctx.client.set_profile_photo(op.avatar.data)
    return ok(None, "Success change avatar")


@handles(ops.ChangePushName)
def change_push_name(ctx: Context, op: ops.ChangePushName) -> p.OperationResult:
    ctx.client.set_profile_name(op.push_name)
    return ok(None, "Success change push name")


@handles(ops.MyPrivacy)
def my_privacy(ctx: Context, op: ops.MyPrivacy) -> p.OperationResult:
    settings = ctx.client.get_privacy_settings()
    return ok(
        {
            "group_add": settings.GroupAdd,
            "last_seen": settings.LastSeen,
            "status": settings.Status,
            "profile": settings.Profile,
            "read_receipts": settings.ReadReceipts,
        },
        "Success get privacy",
    )


@handles(ops.MyGroups)
def my_groups(ctx: Context, op: ops.MyGroups) -> p.OperationResult:
    groups = [group_json(info) for info in ctx.client.get_joined_groups()]
    return ok({"data": groups}, "Success get list groups")


@handles(ops.MyNewsletters)
def my_newsletters(ctx: Context, op: ops.MyNewsletters) -> p.OperationResult:
    data = [newsletter_json(item) for item in ctx.client.get_subscribed_newletters()]
    return ok({"data": data}, "Success get list newsletter")


@handles(ops.MyContacts)
def my_contacts(ctx: Context, op: ops.MyContacts) -> p.OperationResult:
    contacts = [
        {
            "jid": payloads.jid_str(contact.JID),
            "name": contact.Info.FullName or contact.Info.PushName or contact.Info.BusinessName,
        }
        for contact in ctx.client.contact.get_all_contacts()
    ]
    return ok({"data": contacts}, "Success get list contacts")


@handles(ops.UserCheck)
def user_check(ctx: Context, op: ops.UserCheck) -> p.OperationResult:
    number = op.phone.split("@")[0].lstrip("+")
    found = ctx.client.is_on_whatsapp(f"+{number}")
    return ok({"is_on_whatsapp": any(item.IsIn for item in found)}, "Success check user")


@handles(ops.BusinessProfile)
def business_profile(ctx: Context, op: ops.BusinessProfile) -> p.OperationResult:
    raise fail(
        p.ERR_NOT_SUPPORTED,
        "business profiles are not available: the neonize client has no business-profile call",
    )


# -------------------------------------------------------------------- send


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
    message = ctx.client.build_sticker_message(upload.data)
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
        raise fail(p.ERR_BAD_REQUEST, "max_answer cannot exceed the number of options")
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
    status = f"Send chat presence {op.action} typing success"
    return ok({"message_id": "", "status": status}, status)


# ----------------------------------------------------------------- message


@handles(ops.RevokeMessage)
def revoke_message(ctx: Context, op: ops.RevokeMessage) -> p.OperationResult:
    jid, chat = chat_of(op.phone)
    response = ctx.client.revoke_message(jid, ctx.me(), op.message_id)
    ctx.store.revoke(chat, op.message_id)
    return ok({"message_id": response.ID, "status": "Revoke success"}, "Revoke success")


@handles(ops.DeleteMessage)
def delete_message(ctx: Context, op: ops.DeleteMessage) -> p.OperationResult:
    _, chat, stored = stored_message(ctx, op)
    from_me = "1" if stored["is_from_me"] else "0"
    sender = "0" if stored["is_from_me"] else stored["sender_jid"]
    app_state(
        ctx,
        pb.PatchInfo.REGULAR_HIGH,
        ["deleteMessageForMe", chat, op.message_id, from_me, sender],
        3,
        deleteMessageForMeAction={
            "deleteMedia": True,
            "messageTimestamp": int(stored["timestamp"] * 1000),
        },
    )
    ctx.store.delete(chat, op.message_id)
    return ok(None, "Message deleted successfully")


@handles(ops.ReactMessage)
def react_message(ctx: Context, op: ops.ReactMessage) -> p.OperationResult:
    jid, chat = chat_of(op.phone)
    sender = sender_of(ctx, jid, chat, op.message_id)
    message = ctx.client.build_reaction(jid, sender, op.message_id, op.emoji)
    response = ctx.client.send_message(jid, message)
    me = ctx.session.me.jid if ctx.session.me else ""
    ctx.store.set_reaction(chat, op.message_id, me, op.emoji, _seconds(response.Timestamp))
    status = (
        f"Reaction sent to {op.phone} (server timestamp: {rfc3339(_seconds(response.Timestamp))})"
    )
    return ok({"message_id": response.ID, "status": status}, status)


@handles(ops.UpdateMessage)
def update_message(ctx: Context, op: ops.UpdateMessage) -> p.OperationResult:
    jid, chat = chat_of(op.phone)
    response = ctx.client.edit_message(jid, op.message_id, e2e.Message(conversation=op.message))
    ctx.store.edit(chat, op.message_id, op.message)
    status = f"Update message success {op.phone}"
    return ok({"message_id": response.ID, "status": status}, status)


def _star(ctx: Context, op: ops.MessageTarget, starred: bool) -> None:
    _, chat, stored = stored_message(ctx, op)
    from_me = "1" if stored["is_from_me"] else "0"
    sender = "0" if stored["is_from_me"] else stored["sender_jid"]
    app_state(
        ctx,
        pb.PatchInfo.REGULAR_HIGH,
        ["star", chat, op.message_id, from_me, sender],
        2,
        starAction={"starred": starred},
    )
    ctx.store.set_flag(chat, op.message_id, "starred", int(starred))


@handles(ops.StarMessage)
def star_message(ctx: Context, op: ops.StarMessage) -> p.OperationResult:
    _star(ctx, op, True)
    return ok(None, "Starred message successfully")


@handles(ops.UnstarMessage)
def unstar_message(ctx: Context, op: ops.UnstarMessage) -> p.OperationResult:
    _star(ctx, op, False)
    return ok(None, "Unstarred message successfully")


@handles(ops.ForwardMessage)
def forward_message(ctx: Context, op: ops.ForwardMessage) -> p.OperationResult:
    stored = ctx.store.message(op.message_id)
    if stored is None or not stored["raw"]:
        raise fail(p.ERR_NOT_FOUND, f"message {op.message_id!r} is not in the chat storage")
    original = e2e.Message.FromString(stored["raw"])
    for field in CONTEXT_FIELDS:
        if original.HasField(field):
            getattr(original, field).ClearField("contextInfo")
    message = decorate(original, forwarded=True, duration=op.duration)
    return send(ctx, op.phone, message, stored["content"], kind="forward", label="Forward")


@handles(ops.DownloadMessage)
def download_message(ctx: Context, op: ops.DownloadMessage) -> p.OperationResult:
    _, chat, stored = stored_message(ctx, op)
    if not stored["media_type"] or not stored["raw"]:
        raise fail(p.ERR_NOT_FOUND, f"message {op.message_id!r} has no media")
    path = Path(stored["media_path"]) if stored["media_path"] else None
    if path is None or not path.is_file():
        path = download_to_disk(ctx, chat, op.message_id, e2e.Message.FromString(stored["raw"]))
    return ok(
        {
            "message_id": op.message_id,
            "status": "Media downloaded successfully",
            "media_type": stored["media_type"],
            "filename": path.name,
            "file_path": str(path),
            "file_size": path.stat().st_size,
        },
        "Media downloaded successfully",
    )


@handles(ops.RejectCall)
def reject_call(ctx: Context, op: ops.RejectCall) -> p.OperationResult:
    ctx.client.reject_call(parse_jid(op.caller_jid), op.call_id)
    return ok(None, "Call rejected successfully")


# -------------------------------------------------------------------- chat


@handles(ops.ListChats, connected=False)
def list_chats(ctx: Context, op: ops.ListChats) -> p.OperationResult:
    data, total = ctx.store.chats(op.limit, op.offset, op.search, op.has_media, op.archived)
    return ok(
        {"data": data, "pagination": {"limit": op.limit, "offset": op.offset, "total": total}},
        "Success get chat list",
    )


@handles(ops.ChatMessages, connected=False)
def chat_messages(ctx: Context, op: ops.ChatMessages) -> p.OperationResult:
    _, chat = chat_of(op.chat_jid)
    data, total = ctx.store.messages(
        chat,
        op.limit,
        op.offset,
        start=_time_arg(op.start_time, "start_time"),
        end=_time_arg(op.end_time, "end_time"),
        media_only=op.media_only,
        is_from_me=op.is_from_me,
        search=op.search,
    )
    return ok(
        {
            "data": data,
            "pagination": {"limit": op.limit, "offset": op.offset, "total": total},
            "chat_info": ctx.store.chat(chat),
        },
        "Success get chat messages",
    )


@handles(ops.PinChat)
def pin_chat(ctx: Context, op: ops.PinChat) -> p.OperationResult:
    _, chat = chat_of(op.chat_jid)
    app_state(ctx, pb.PatchInfo.REGULAR_LOW, ["pin_v1", chat], 5, pinAction={"pinned": op.pinned})
    ctx.store.set_chat(chat, pinned=int(op.pinned))
    word = "pinned" if op.pinned else "unpinned"
    return ok(
        {
            "status": "success",
            "message": f"Chat {word} successfully",
            "chat_jid": chat,
            "pinned": op.pinned,
        },
        f"Chat {word} successfully",
    )


@handles(ops.SetDisappearing)
def set_disappearing(ctx: Context, op: ops.SetDisappearing) -> p.OperationResult:
    if op.timer_seconds not in (0, 86400, 604800, 7776000):
        raise fail(p.ERR_BAD_REQUEST, "timer_seconds must be 0, 86400, 604800 or 7776000")
    jid, chat = chat_of(op.chat_jid)
    from datetime import timedelta

    ctx.client.set_disappearing_timer(jid, timedelta(seconds=op.timer_seconds))
    ctx.store.set_chat(chat, ephemeral_expiration=op.timer_seconds)
    message = "Disappearing timer set successfully"
    return ok(
        {
            "status": "success",
            "message": message,
            "chat_jid": chat,
            "timer_seconds": op.timer_seconds,
        },
        message,
    )


@handles(ops.ArchiveChat)
def archive_chat(ctx: Context, op: ops.ArchiveChat) -> p.OperationResult:
    _, chat = chat_of(op.chat_jid)
    app_state(
        ctx,
        pb.PatchInfo.REGULAR_LOW,
        ["archive", chat],
        3,
        archiveChatAction={"archived": op.archived},
    )
    ctx.store.set_chat(chat, archived=int(op.archived))
    word = "archived" if op.archived else "unarchived"
    return ok(
        {
            "status": "success",
            "message": f"Chat {word} successfully",
            "chat_jid": chat,
            "archived": op.archived,
        },
        f"Chat {word} successfully",
    )


# ------------------------------------------------------------------- group


def _time(value: int) -> str:
    return rfc3339(value) if value else "0001-01-01T00:00:00Z"


def participant_json(participant: pb.GroupParticipant) -> dict[str, Any]:
    return {
        "jid": payloads.jid_str(participant.JID),
        "phone_number": payloads.jid_str(participant.PhoneNumber),
        "lid": payloads.jid_str(participant.LID),
        "display_name": participant.DisplayName,
        "is_admin": participant.IsAdmin,
        "is_super_admin": participant.IsSuperAdmin,
    }


def group_json(info: pb.GroupInfo) -> dict[str, Any]:
    """whatsmeow's ``types.GroupInfo`` JSON (GoWA returns it as is)."""
    return {
        "JID": payloads.jid_str(info.JID),
        "OwnerJID": payloads.jid_str(info.OwnerJID),
        "OwnerPN": payloads.jid_str(info.OwnerPN),
        "Name": info.GroupName.Name,
        "NameSetAt": _time(info.GroupName.NameSetAt),
        "NameSetBy": payloads.jid_str(info.GroupName.NameSetBy),
        "Topic": info.GroupTopic.Topic,
        "TopicID": info.GroupTopic.TopicID,
        "TopicSetAt": _time(info.GroupTopic.TopicSetAt),
        "TopicSetBy": payloads.jid_str(info.GroupTopic.TopicSetBy),
        "TopicDeleted": info.GroupTopic.TopicDeleted,
        "IsLocked": info.GroupLocked.isLocked,
        "IsAnnounce": info.GroupAnnounce.IsAnnounce,
        "AnnounceVersionID": info.GroupAnnounce.AnnounceVersionID,
        "IsEphemeral": info.GroupEphemeral.IsEphemeral,
        "DisappearingTimer": info.GroupEphemeral.DisappearingTimer,
        "IsIncognito": info.GroupIncognito.IsIncognito
        if info.HasField("GroupIncognito")
        else False,
        "IsParent": info.GroupParent.IsParent,
        "LinkedParentJID": payloads.jid_str(info.GroupLinkedParent.LinkedParentJID),
        "IsDefaultSubGroup": info.GroupIsDefaultSub.IsDefaultSubGroup,
        "GroupCreated": _time(info.GroupCreated),
        "ParticipantVersionID": info.ParticipantVersionID,
        "ParticipantCount": len(info.Participants),
        "Participants": [
            {
                "JID": payloads.jid_str(item.JID),
                "PhoneNumber": payloads.jid_str(item.PhoneNumber),
                "LID": payloads.jid_str(item.LID),
                "IsAdmin": item.IsAdmin,
                "IsSuperAdmin": item.IsSuperAdmin,
                "DisplayName": item.DisplayName,
            }
            for item in info.Participants
        ],
    }


def newsletter_json(meta: pb.NewsletterMetadata) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    thread = meta.ThreadMeta
    return {
        "id": payloads.jid_str(meta.ID),
        "state": {"type": MessageToDict(meta.State).get("Type", "")},
        "thread_metadata": {
            "creation_time": str(thread.CreationTime),
            "invite": thread.InviteCode,
            "name": MessageToDict(thread.Name),
            "description": MessageToDict(thread.Description),
            "subscribers_count": str(thread.SubscriberCount),
            "verification": MessageToDict(meta.ThreadMeta).get("VerificationState", ""),
            "picture": MessageToDict(thread.Picture),
            "preview": MessageToDict(thread.Preview),
            "settings": MessageToDict(thread.Settings),
        },
        "viewer_metadata": MessageToDict(meta.ViewerMeta),
    }


@handles(ops.GroupInfo)
def group_info(ctx: Context, op: ops.GroupInfo) -> p.OperationResult:
    return ok(
        group_json(ctx.client.get_group_info(group_jid(op.group_id))), "Success get group info"
    )


@handles(ops.CreateGroup)
def create_group(ctx: Context, op: ops.CreateGroup) -> p.OperationResult:
    members = [parse_jid(item) for item in op.participants]
    info = ctx.client.create_group(op.title, members)
    group_id = payloads.jid_str(info.JID)
    ctx.store.set_chat(group_id, name=op.title)
    return ok({"group_id": group_id}, f"Success created group with id {group_id}")


def _participants(ctx: Context, op: ops.GroupRef) -> tuple[str, dict[str, Any]]:
    info = ctx.client.get_group_info(group_jid(op.group_id))
    group_id = payloads.jid_str(info.JID)
    return group_id, {
        "group_id": group_id,
        "name": info.GroupName.Name,
        "participants": [participant_json(item) for item in info.Participants],
    }


@handles(ops.GroupParticipants)
def group_participants(ctx: Context, op: ops.GroupParticipants) -> p.OperationResult:
    _, result = _participants(ctx, op)
    return ok(result, "Success get group participants")


@handles(ops.ExportGroupParticipants)
def export_participants(ctx: Context, op: ops.ExportGroupParticipants) -> p.OperationResult:
    import csv
    import io

    group_id, result = _participants(ctx, op)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["participant_jid", "phone_number", "lid", "display_name", "role"])
    for item in result["participants"]:
        role = (
            "super_admin" if item["is_super_admin"] else "admin" if item["is_admin"] else "member"
        )
        writer.writerow(
            [item["jid"], item["phone_number"], item["lid"], item["display_name"], role]
        )
    return p.OperationResult(
        content=buffer.getvalue().encode(),
        content_type="text/csv; charset=utf-8",
        filename=f"group-{group_id.replace('@', '_')}-participants.csv",
    )


def _manage(ctx: Context, op: ops.ManageParticipants, action: str) -> p.OperationResult:
    from neonize.utils.enum import ParticipantChange

    jid = group_jid(op.group_id)
    changes = ctx.client.update_group_participants(
        jid, [parse_jid(item) for item in op.participants], ParticipantChange(action)
    )
    results = [
        {
            "participant": payloads.jid_str(item.JID),
            "status": "error" if item.Error else "success",
            "message": f"error code {item.Error}" if item.Error else f"Participant {action}ed",
        }
        for item in changes
    ]
    return ok(results, f"Success {action} participants")


@handles(ops.AddParticipants)
def add_participants(ctx: Context, op: ops.AddParticipants) -> p.OperationResult:
    return _manage(ctx, op, "add")


@handles(ops.RemoveParticipants)
def remove_participants(ctx: Context, op: ops.RemoveParticipants) -> p.OperationResult:
    return _manage(ctx, op, "remove")


@handles(ops.PromoteParticipants)
def promote_participants(ctx: Context, op: ops.PromoteParticipants) -> p.OperationResult:
    return _manage(ctx, op, "promote")


@handles(ops.DemoteParticipants)
def demote_participants(ctx: Context, op: ops.DemoteParticipants) -> p.OperationResult:
    return _manage(ctx, op, "demote")


@handles(ops.JoinGroupWithLink)
def join_group(ctx: Context, op: ops.JoinGroupWithLink) -> p.OperationResult:
    jid = ctx.client.join_group_with_link(invite_code(op.link))
    group_id = payloads.jid_str(jid)
    return ok({"group_id": group_id}, f"Success joined group {group_id}")


@handles(ops.GroupInfoFromLink)
def group_info_from_link(ctx: Context, op: ops.GroupInfoFromLink) -> p.OperationResult:
    info = ctx.client.get_group_info_from_link(invite_code(op.link))
    return ok(
        {
            "group_id": payloads.jid_str(info.JID),
            "name": info.GroupName.Name,
            "topic": info.GroupTopic.Topic,
            "created_at": _time(info.GroupCreated),
            "participant_count": len(info.Participants),
            "is_locked": info.GroupLocked.isLocked,
            "is_announce": info.GroupAnnounce.IsAnnounce,
            "is_ephemeral": info.GroupEphemeral.IsEphemeral,
            "description": info.GroupTopic.Topic,
        },
        "Success get group info from link",
    )


@handles(ops.GroupRequests)
def group_requests(ctx: Context, op: ops.GroupRequests) -> p.OperationResult:
    requests = ctx.client.get_group_request_participants(group_jid(op.group_id))
    return ok(
        [
            {
                "jid": payloads.jid_str(item.Participant),
                "phone_number": item.Participant.User,
                "display_name": "",
                "requested_at": _time(item.TimeAt),
            }
            for item in requests
        ],
        "Success getting list requested participants",
    )


def _requests_unsupported(ctx: Context, op: ops.ManageParticipants) -> p.OperationResult:
    group_jid(op.group_id)
    raise fail(
        p.ERR_NOT_SUPPORTED,
        "approving or rejecting join requests is not available: the neonize client has no "
        "call for it",
    )


handles(ops.ApproveGroupRequests)(_requests_unsupported)
handles(ops.RejectGroupRequests)(_requests_unsupported)


@handles(ops.LeaveGroup)
def leave_group(ctx: Context, op: ops.LeaveGroup) -> p.OperationResult:
    ctx.client.leave_group(group_jid(op.group_id))
    return ok(None, "Success leave group")


@handles(ops.SetGroupPhoto)
def set_group_photo(ctx: Context, op: ops.SetGroupPhoto) -> p.OperationResult:
    jid = group_jid(op.group_id)
    picture_id = ctx.client.set_group_photo(jid, op.photo.data if op.photo else b"")
    message = "Success update group photo" if op.photo else "Success remove group photo"
    return ok({"picture_id": picture_id, "message": message}, message)


@handles(ops.SetGroupName)
def set_group_name(ctx: Context, op: ops.SetGroupName) -> p.OperationResult:
    jid = group_jid(op.group_id)
    ctx.client.set_group_name(jid, op.name)
    ctx.store.set_chat(payloads.jid_str(jid), name=op.name)
    return ok(None, f"Success update group name to {op.name}")


@handles(ops.SetGroupLocked)
def set_group_locked(ctx: Context, op: ops.SetGroupLocked) -> p.OperationResult:
    ctx.client.set_group_locked(group_jid(op.group_id), op.locked)
    return ok(None, "Success lock group" if op.locked else "Success unlock group")


@handles(ops.SetGroupAnnounce)
def set_group_announce(ctx: Context, op: ops.SetGroupAnnounce) -> p.OperationResult:
    ctx.client.set_group_announce(group_jid(op.group_id), op.announce)
    return ok(
        None, "Success enable announce mode" if op.announce else "Success disable announce mode"
    )


@handles(ops.SetGroupTopic)
def set_group_topic(ctx: Context, op: ops.SetGroupTopic) -> p.OperationResult:
    jid = group_jid(op.group_id)
    previous = ctx.client.get_group_info(jid).GroupTopic.TopicID
    ctx.client.set_group_topic(jid, previous, uuid.uuid4().hex.upper()[:32], op.topic)
    return ok(None, "Success update group topic" if op.topic else "Success remove group topic")


@handles(ops.GroupInviteLink)
def group_invite_link(ctx: Context, op: ops.GroupInviteLink) -> p.OperationResult:
    jid = group_jid(op.group_id)
    link = ctx.client.get_group_invite_link(jid, op.reset)
    return ok(
        {"invite_link": link, "group_id": payloads.jid_str(jid)}, "Success get group invite link"
    )


# -------------------------------------------------------------- newsletter


def newsletter_jid(value: str) -> pb.JID:
    jid = parse_jid(value if "@" in value else f"{value}@newsletter")
    if jid.Server != "newsletter":
        raise fail(p.ERR_INVALID_JID, f"{value!r} is not a newsletter JID (…@newsletter)")
    return jid


@handles(ops.UnfollowNewsletter)
def unfollow_newsletter(ctx: Context, op: ops.UnfollowNewsletter) -> p.OperationResult:
    ctx.client.unfollow_newsletter(newsletter_jid(op.newsletter_id))
    return ok(None, "Success unfollow newsletter")


@handles(ops.NewsletterMessages)
def newsletter_messages(ctx: Context, op: ops.NewsletterMessages) -> p.OperationResult:
    items = ctx.client.get_newsletter_messages(
        newsletter_jid(op.newsletter_id), op.count, op.before or 0
    )
    data = []
    for item in items:
        message = item.Message
        data.append(
            {
                "server_id": item.MessageServerID,
                "message_id": str(item.MessageServerID),
                "type": next(
                    (kind for field, kind in MEDIA_FIELDS.items() if message.HasField(field)),
                    "text",
                ),
                "timestamp": "",
                "views_count": item.ViewsCount,
                "reaction_counts": {r.type: r.count for r in item.ReactionCounts},
                "text": describe(message),
            }
        )
    return ok({"data": data}, "Success get newsletter messages")


# ---------------------------------------------------------------- settings


@handles(ops.ApplySettings, connected=False)
def apply_settings(ctx: Context, op: ops.ApplySettings) -> p.OperationResult:
    ctx.settings = op
    ctx.store.retention_days = op.chat_retention_days
    removed = ctx.store.prune()
    return ok({"pruned_messages": removed}, "Settings applied")
