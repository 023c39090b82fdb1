"""Chats archived or pinned on the phone or another device, shown in the chat list.

whatsmeow applies the app-state patches of the account's other devices and keeps each
chat's archived, pinned and muted state in its own store (``Store.ChatSettings``).
neonize forwards none of the events that carry them (whatsmeow's ``Archive``, ``Pin``),
on which GoWA updates its chat storage, but it reads that store (``get_chat_settings``),
so the chat store takes the state from there before the chat list or a chat is read.
Only a logged-in session has the store: before pairing whatsmeow has none, and neonize's
call would crash the Go runtime on its nil store.
"""

from __future__ import annotations

import logging

from workers.jid import parse_jid
from workers.operations.context import Context

log = logging.getLogger(__name__)


def refresh(ctx: Context, jid: str | None = None) -> None:
    """Bring the stored pinned and archived flags of every chat (or one) up to whatsmeow's."""
    if ctx.session.me is None:
        return
    settings_store = ctx.client.chat_settings
    for chat, flags in ctx.store.chat_flags(jid).items():
        try:
            settings = settings_store.get_chat_settings(parse_jid(chat))
        except Exception as exc:
            log.warning("no chat settings for %s: %s", chat, exc)
            continue
        if settings.Found and (settings.Pinned, settings.Archived) != flags:
            ctx.store.set_chat(chat, pinned=int(settings.Pinned), archived=int(settings.Archived))
