"""One msgspec struct per GoWA v9 operation: the single source of truth for its input.

The gateway builds an operation from the request (path, query, JSON body or multipart
form; field names exactly as GoWA's ``docs/openapi.yaml``), which validates it, and sends
the same struct to the session's worker inside :class:`gowa_py.protocol.Operation`. The
worker dispatches on the struct's type (``workers/operations/``) and ``/openapi.json``
is generated from these structs, so the three can never disagree.

Kept free of heavy imports: the gateway, the workers and the zygote all load it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import msgspec

# JIDs are checked here, where every operation is validated, so a malformed one answers
# 400 naming its field instead of reaching whatsmeow (which refused it with a 502). ASCII
# digits only: ``\d`` and ``str.isdigit`` accept other scripts' digits.
DIGITS = "[0-9]{1,20}"
USER_JID = rf"{DIGITS}(?::[0-9]{{1,5}})?@(?:s\.whatsapp\.net|c\.us|lid|hosted|hosted\.lid)"
GROUP_JID = rf"{DIGITS}(?:-{DIGITS})?@g\.us"
NEWSLETTER_JID = rf"{DIGITS}@newsletter"
PHONE_NUMBER = r"\+?[0-9][0-9 -]{0,40}"
RECIPIENT_PATTERN = (
    rf"^ *(?:{PHONE_NUMBER}|{USER_JID}|{GROUP_JID}|{NEWSLETTER_JID}|"
    rf"(?:status|{DIGITS})@broadcast) *$"
)

Phone = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=128,
        pattern=RECIPIENT_PATTERN,
        description="Phone number with country code, or a JID (`...@s.whatsapp.net`, `@g.us`)",
    ),
]
MessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
GroupId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=128,
        pattern=rf"^ *{DIGITS}(?:-{DIGITS})?(?:@g\.us)? *$",
        description="Group JID (`...@g.us`)",
    ),
]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=65536)]
Duration = Annotated[
    int,
    msgspec.Meta(ge=0, le=90 * 86400, description="Disappearing-message timer in seconds"),
]
Participants = Annotated[list[Phone], msgspec.Meta(min_length=1)]


class Upload(msgspec.Struct, frozen=True):
    """A file from a multipart form field or fetched from its ``*_url`` by the gateway."""

    data: bytes
    filename: str = ""
    content_type: str = ""


class Op(msgspec.Struct, frozen=True, tag=True, tag_field="op", kw_only=True):
    """Base of every operation; the tag (class name) selects the worker's handler."""


# --------------------------------------------------------------------------- app


class PasskeyStatus(Op, frozen=True, kw_only=True):
    """``GET /app/passkey``."""


class PasskeyResponse(Op, frozen=True, kw_only=True):
    """``POST /app/passkey/response``: a WebAuthn assertion for a pending passkey login."""

    id: str
    rawId: str  # GoWA's (WebAuthn's) field name
    type: str
    response: dict[str, Any]


class PasskeyConfirm(Op, frozen=True, kw_only=True):
    """``POST /app/passkey/confirm``."""


# -------------------------------------------------------------------------- user


class UserInfo(Op, frozen=True, kw_only=True):
    phone: Phone


class UserAvatar(Op, frozen=True, kw_only=True):
    phone: Phone
    is_preview: bool = False
    is_community: bool = False


class ChangeAvatar(Op, frozen=True, kw_only=True):
    avatar: Upload


class ChangePushName(Op, frozen=True, kw_only=True):
    push_name: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class MyPrivacy(Op, frozen=True, kw_only=True):
    pass


class MyGroups(Op, frozen=True, kw_only=True):
    pass


class MyNewsletters(Op, frozen=True, kw_only=True):
    pass


class MyContacts(Op, frozen=True, kw_only=True):
    pass


class UserCheck(Op, frozen=True, kw_only=True):
    phone: Phone


class BusinessProfile(Op, frozen=True, kw_only=True):
    phone: Phone


# -------------------------------------------------------------------------- send


class SendBase(Op, frozen=True, kw_only=True):
    phone: Phone
    is_forwarded: bool = False
    duration: Duration | None = None


class SendMessage(SendBase, frozen=True, kw_only=True):
    message: Text
    reply_message_id: str | None = None
    mentions: list[str] = []


class SendImage(SendBase, frozen=True, kw_only=True):
    caption: str | None = None
    reply_message_id: str | None = None
    view_once: bool = False
    image: Upload | None = None
    image_url: str | None = None
    compress: bool = False
    hd: bool = False


class SendAudio(SendBase, frozen=True, kw_only=True):
    audio: Upload | None = None
    audio_url: str | None = None
    ptt: bool = False
    reply_message_id: str | None = None


class SendFile(SendBase, frozen=True, kw_only=True):
    caption: str | None = None
    reply_message_id: str | None = None
    file: Upload | None = None
    file_url: str | None = None


class SendSticker(SendBase, frozen=True, kw_only=True):
    sticker: Upload | None = None
    sticker_url: str | None = None


class SendVideo(SendBase, frozen=True, kw_only=True):
    caption: str | None = None
    reply_message_id: str | None = None
    view_once: bool = False
    video: Upload | None = None
    video_url: str | None = None
    compress: bool = False
    hd: bool = False
    gif_playback: bool = False


class SendContact(SendBase, frozen=True, kw_only=True):
    contact_name: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    contact_phone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class SendLink(SendBase, frozen=True, kw_only=True):
    link: Annotated[str, msgspec.Meta(pattern=r"^https?://\S+$", max_length=4096)]
    caption: str = ""


class SendLocation(SendBase, frozen=True, kw_only=True):
    latitude: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    longitude: Annotated[float, msgspec.Meta(ge=-180, le=180)]


class SendPoll(Op, frozen=True, kw_only=True):
    phone: Phone
    question: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    options: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=100)]],
        msgspec.Meta(min_length=2, max_length=12),
    ]
    max_answer: Annotated[int, msgspec.Meta(ge=1, le=12)]
    duration: Duration | None = None


class SendPresence(Op, frozen=True, kw_only=True):
    type: Literal["available", "unavailable"]
    is_forwarded: bool = False


class SendChatPresence(Op, frozen=True, kw_only=True):
    phone: Phone
    action: Literal["start", "stop"]


# ----------------------------------------------------------------------- message


class MessageTarget(Op, frozen=True, kw_only=True):
    message_id: MessageId
    phone: Phone


class MarkAsRead(MessageTarget, frozen=True, kw_only=True):
    """A read receipt for one message; ``phone`` is the chat it is in."""


class RevokeMessage(MessageTarget, frozen=True, kw_only=True):
    pass


class DeleteMessage(MessageTarget, frozen=True, kw_only=True):
    pass


class ReactMessage(MessageTarget, frozen=True, kw_only=True):
    emoji: Annotated[str, msgspec.Meta(max_length=32, description="empty removes a reaction")]


class UpdateMessage(MessageTarget, frozen=True, kw_only=True):
    message: Text


class StarMessage(MessageTarget, frozen=True, kw_only=True):
    pass


class UnstarMessage(MessageTarget, frozen=True, kw_only=True):
    pass


class ForwardMessage(MessageTarget, frozen=True, kw_only=True):
    duration: Duration | None = None
    force_reupload: bool = False


class DownloadMessage(MessageTarget, frozen=True, kw_only=True):
    pass


class RejectCall(Op, frozen=True, kw_only=True):
    caller_jid: Annotated[str, msgspec.Meta(max_length=128, pattern=rf"^ *{USER_JID} *$")]
    call_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


# -------------------------------------------------------------------------- chat

Limit = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Offset = Annotated[int, msgspec.Meta(ge=0, le=2**31)]


class ListChats(Op, frozen=True, kw_only=True):
    limit: Limit = 25
    offset: Offset = 0
    search: str = ""
    has_media: bool = False
    archived: bool | None = None


class ChatMessages(Op, frozen=True, kw_only=True):
    chat_jid: Phone
    limit: Limit = 50
    offset: Offset = 0
    start_time: str | None = None
    end_time: str | None = None
    media_only: bool = False
    is_from_me: bool | None = None
    search: str = ""


class PinChat(Op, frozen=True, kw_only=True):
    chat_jid: Phone
    pinned: bool


class SetDisappearing(Op, frozen=True, kw_only=True):
    chat_jid: Phone
    timer_seconds: Annotated[
        int, msgspec.Meta(description="0 (off), 86400, 604800 or 7776000", ge=0, le=7776000)
    ]


class ArchiveChat(Op, frozen=True, kw_only=True):
    chat_jid: Phone
    archived: bool


# ------------------------------------------------------------------------- group


class GroupRef(Op, frozen=True, kw_only=True):
    group_id: GroupId


class GroupInfo(GroupRef, frozen=True, kw_only=True):
    pass


class CreateGroup(Op, frozen=True, kw_only=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    participants: list[Annotated[str, msgspec.Meta(min_length=1)]] = []


class GroupParticipants(GroupRef, frozen=True, kw_only=True):
    pass


class ExportGroupParticipants(GroupRef, frozen=True, kw_only=True):
    pass


class ManageParticipants(GroupRef, frozen=True, kw_only=True):
    participants: Participants


class AddParticipants(ManageParticipants, frozen=True, kw_only=True):
    pass


class RemoveParticipants(ManageParticipants, frozen=True, kw_only=True):
    pass


class PromoteParticipants(ManageParticipants, frozen=True, kw_only=True):
    pass


class DemoteParticipants(ManageParticipants, frozen=True, kw_only=True):
    pass


class JoinGroupWithLink(Op, frozen=True, kw_only=True):
    link: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class GroupInfoFromLink(Op, frozen=True, kw_only=True):
    link: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class GroupRequests(GroupRef, frozen=True, kw_only=True):
    pass


class ApproveGroupRequests(ManageParticipants, frozen=True, kw_only=True):
    pass


class RejectGroupRequests(ManageParticipants, frozen=True, kw_only=True):
    pass


class LeaveGroup(GroupRef, frozen=True, kw_only=True):
    pass


class SetGroupPhoto(GroupRef, frozen=True, kw_only=True):
    photo: Upload | None = None


class SetGroupName(GroupRef, frozen=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class SetGroupLocked(GroupRef, frozen=True, kw_only=True):
    locked: bool


class SetGroupAnnounce(GroupRef, frozen=True, kw_only=True):
    announce: bool


class SetGroupTopic(GroupRef, frozen=True, kw_only=True):
    topic: Annotated[str, msgspec.Meta(max_length=2048)] = ""


class GroupInviteLink(GroupRef, frozen=True, kw_only=True):
    reset: bool = False


# -------------------------------------------------------------------- newsletter

NewsletterId = Annotated[
    str,
    msgspec.Meta(
        max_length=128,
        pattern=rf"^ *{DIGITS}(?:@newsletter)? *$",
        description="Newsletter JID (`@newsletter`)",
    ),
]


class UnfollowNewsletter(Op, frozen=True, kw_only=True):
    newsletter_id: NewsletterId


class NewsletterMessages(Op, frozen=True, kw_only=True):
    newsletter_id: NewsletterId
    count: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20
    before: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | None = None


# ------------------------------------------------------------- session settings


class ApplySettings(Op, frozen=True, kw_only=True):
    """Push changed per-session settings to a running worker (``PATCH /api/sessions/{id}``)."""

    auto_reply: str | None = None
    auto_mark_read: bool = False
    auto_download_media: bool = True
    auto_reject_call: bool = False
    presence_on_connect: str = "available"
    chat_retention_days: Annotated[int, msgspec.Meta(ge=0, le=36500)] | None = None


OPERATIONS: tuple[type[Op], ...] = tuple(
    cls
    for cls in list(globals().values())
    if isinstance(cls, type)
    and issubclass(cls, Op)
    and cls is not Op
    and not cls.__name__.endswith(("Base", "Target", "Ref"))
    and cls is not ManageParticipants
)

OperationInput = Union[OPERATIONS]  # type: ignore[valid-type]  # noqa: UP007
