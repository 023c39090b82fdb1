"""GoWA's ``chat`` tag: chat list and history from the chat store (archived and pinned
as other devices set them, :mod:`.chatsettings`); timer; pin and archive refused (see
:mod:`workers.operations.appstate`)."""

from __future__ import annotations

from datetime import datetime

from gowa_py import operations as ops
from gowa_py import protocol as p
from workers.operations import chatsettings
from workers.operations.appstate import unsupported
from workers.operations.context import Context, fail, handles, ok
from workers.operations.messages import chat_of


def _time_arg(value: str | None, name: str) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise fail(p.ErrorCode.VALIDATION_ERROR, f"{name} must be an RFC 3339 time") from None


@handles(ops.ListChats, connected=False)
def list_chats(ctx: Context, op: ops.ListChats) -> p.OperationResult:
    chatsettings.refresh(ctx)
    data, total = ctx.store.chats(op.limit, op.offset, op.search, op.has_media, op.archived)
    return ok(
        {"data": data, "pagination": {"limit": op.limit, "offset": op.offset, "total": total}},
        "Success get chat list",
    )


@handles(ops.ChatMessages, connected=False)
def chat_messages(ctx: Context, op: ops.ChatMessages) -> p.OperationResult:
    _, chat = chat_of(op.chat_jid)
    chatsettings.refresh(ctx, chat)
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


@handles(ops.PinChat, connected=False)
def pin_chat(ctx: Context, op: ops.PinChat) -> p.OperationResult:
    chat_of(op.chat_jid)
    raise unsupported("pinning a chat" if op.pinned else "unpinning a chat")


@handles(ops.SetDisappearing)
def set_disappearing(ctx: Context, op: ops.SetDisappearing) -> p.OperationResult:
    if op.timer_seconds not in (0, 86400, 604800, 7776000):
        raise fail(
            p.ErrorCode.VALIDATION_ERROR, "timer_seconds must be 0, 86400, 604800 or 7776000"
        )
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


@handles(ops.ArchiveChat, connected=False)
def archive_chat(ctx: Context, op: ops.ArchiveChat) -> p.OperationResult:
    chat_of(op.chat_jid)
    raise unsupported("archiving a chat" if op.archived else "unarchiving a chat")
