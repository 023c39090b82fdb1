"""GoWA's ``newsletter`` tag: unfollow, and the messages of a newsletter."""

from __future__ import annotations

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
