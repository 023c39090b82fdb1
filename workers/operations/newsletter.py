"""GoWA's ``newsletter`` tag: unfollow, and the messages of a newsletter."""

from __future__ import annotations

import base64
from typing import Any

from neonize.proto import Neonize_pb2 as pb

from gowa_py import operations as ops
from gowa_py import protocol as p
from workers import payloads
from workers.jid import parse_jid
from workers.operations.context import Context, fail, handles, ok
from workers.operations.messages import MEDIA_FIELDS, describe


def newsletter_jid(value: str) -> pb.JID:
    jid = parse_jid(value if "@" in value else f"{value}@newsletter")
    if jid.Server != "newsletter":
        raise fail(p.ErrorCode.INVALID_JID, f"{value!r} is not a newsletter JID (…@newsletter)")
    return jid


def _enum(message: Any, field: str) -> str:
    """A neonize enum field as whatsmeow's JSON string (``OWNER`` -> ``owner``)."""
    value = getattr(message, field)
    enum = message.DESCRIPTOR.fields_by_name[field].enum_type
    return enum.values_by_number[value].name.lower() if value in enum.values_by_number else ""


def _text(text: pb.NewsletterText) -> dict[str, str]:
    return {"text": text.Text, "id": text.ID, "update_time": str(text.UpdateTime * 1_000_000)}


def _picture(info: pb.ProfilePictureInfo) -> dict[str, Any]:
    return {
        "url": info.URL,
        "id": info.ID,
        "type": info.Type,
        "direct_path": info.DirectPath,
        "hash": base64.b64encode(info.Hash).decode() if info.Hash else None,
    }


def newsletter_json(meta: pb.NewsletterMetadata) -> dict[str, Any]:
    """whatsmeow's ``types.NewsletterMetadata`` as Go's encoding/json writes it (GoWA
    returns it as is): lower-case enum strings, times as decimal strings."""
    thread = meta.ThreadMeta
    return {
        "id": payloads.jid_str(meta.ID),
        "state": {"type": _enum(meta.State, "Type")},
        "thread_metadata": {
            "creation_time": str(thread.CreationTime),
            "invite": thread.InviteCode,
            "name": _text(thread.Name),
            "description": _text(thread.Description),
            "subscribers_count": str(thread.SubscriberCount),
            "verification": _enum(thread, "VerificationState"),
            "picture": _picture(thread.Picture) if thread.HasField("Picture") else None,
            "preview": _picture(thread.Preview),
            "settings": {
                "reaction_codes": {"value": _enum(thread.Settings.ReactionCodes, "Value")}
            },
        },
        "viewer_metadata": {
            "mute": _enum(meta.ViewerMeta, "Mute"),
            "role": _enum(meta.ViewerMeta, "Role"),
        }
        if meta.HasField("ViewerMeta")
        else None,
    }


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
