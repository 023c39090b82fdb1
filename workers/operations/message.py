"""GoWA's ``message`` tag: revoke, delete, react, edit, star, forward, download; calls."""

from __future__ import annotations

from pathlib import Path

from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as e2e
from neonize.utils.enum import ReceiptType

from gowa_py import operations as ops
from gowa_py import protocol as p
from workers.jid import parse_jid
from workers.operations.appstate import unsupported
from workers.operations.context import Context, fail, handles, ok
from workers.operations.media import download_to_disk
from workers.operations.messages import (
    CONTEXT_FIELDS,
    chat_of,
    decorate,
    seconds,
    send,
    sender_of,
    stored_message,
)
from workers.timefmt import rfc3339


def _changed(what: str, response: pb.SendResponse) -> p.OperationResult:
    """GoWA's answer to a revoke, reaction or edit: its id, and the server's time in the
    status."""
    status = f"{what} (server timestamp: {rfc3339(seconds(response.Timestamp))})"
    return ok({"message_id": response.ID, "status": status}, status)


@handles(ops.MarkAsRead)
def mark_as_read(ctx: Context, op: ops.MarkAsRead) -> p.OperationResult:
    jid = parse_jid(op.phone)
    ctx.client.mark_read(op.message_id, chat=jid, sender=jid, receipt=ReceiptType.READ)
    ctx.session.touch()
    status = f"Mark as read success {op.message_id}"
    return ok({"message_id": op.message_id, "status": status}, status)


@handles(ops.RevokeMessage)
def revoke_message(ctx: Context, op: ops.RevokeMessage) -> p.OperationResult:
    jid, chat = chat_of(op.phone)
    response = ctx.client.revoke_message(jid, ctx.me(), op.message_id)
    ctx.store.revoke(chat, op.message_id)
    return _changed(f"Revoke success {op.phone}", response)


@handles(ops.DeleteMessage, connected=False)
def delete_message(ctx: Context, op: ops.DeleteMessage) -> p.OperationResult:
    stored_message(ctx, op)
    raise unsupported("deleting a message for me")


@handles(ops.ReactMessage)
def react_message(ctx: Context, op: ops.ReactMessage) -> p.OperationResult:
    jid, chat = chat_of(op.phone)
    sender = sender_of(ctx, jid, chat, op.message_id)
    message = ctx.client.build_reaction(jid, sender, op.message_id, op.emoji)
    response = ctx.client.send_message(jid, message)
    me = ctx.session.me.jid if ctx.session.me else ""
    ctx.store.set_reaction(chat, op.message_id, me, op.emoji, seconds(response.Timestamp))
    return _changed(f"Reaction sent to {op.phone}", response)


@handles(ops.UpdateMessage)
def update_message(ctx: Context, op: ops.UpdateMessage) -> p.OperationResult:
    jid, chat = chat_of(op.phone)
    response = ctx.client.edit_message(jid, op.message_id, e2e.Message(conversation=op.message))
    ctx.store.edit(chat, op.message_id, op.message)
    return _changed(f"Update message success {op.phone}", response)


@handles(ops.StarMessage, connected=False)
def star_message(ctx: Context, op: ops.StarMessage) -> p.OperationResult:
    stored_message(ctx, op)
    raise unsupported("starring a message")


@handles(ops.UnstarMessage, connected=False)
def unstar_message(ctx: Context, op: ops.UnstarMessage) -> p.OperationResult:
    stored_message(ctx, op)
    raise unsupported("unstarring a message")


@handles(ops.ForwardMessage)
def forward_message(ctx: Context, op: ops.ForwardMessage) -> p.OperationResult:
    stored = ctx.store.message(op.message_id)
    if stored is None or not stored["raw"]:
        raise fail(p.ErrorCode.NOT_FOUND, f"message {op.message_id!r} is not in the chat storage")
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
        raise fail(p.ErrorCode.NOT_FOUND, f"message {op.message_id!r} has no media")
    path = Path(stored["media_path"]) if stored["media_path"] else None
    if path is None or not path.is_file():
        path = download_to_disk(ctx, chat, op.message_id, e2e.Message.FromString(stored["raw"]))
    status = f"Media downloaded successfully to {path}"
    return ok(
        {
            "message_id": op.message_id,
            "status": status,
            "media_type": stored["media_type"],
            "filename": path.name,
            "file_path": str(path),
            "file_size": path.stat().st_size,
        },
        status,
    )


@handles(ops.RejectCall)
def reject_call(ctx: Context, op: ops.RejectCall) -> p.OperationResult:
    ctx.client.reject_call(parse_jid(op.caller_jid), op.call_id)
    return ok(None, "Call rejected successfully")
