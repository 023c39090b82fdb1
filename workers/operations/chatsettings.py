"""Chats archived or pinned on the phone or another device, shown in the chat list.

whatsmeow applies the app-state patches of the account's other devices and keeps each
chat's archived, pinned and muted state in its own store (its ``whatsmeow_chat_settings``
table). neonize forwards none of the events that carry them (whatsmeow's ``Archive``,
``Pin``), on which GoWA updates its chat storage, nor any event that says app state was
synced, so the chat store takes the state from whatsmeow's table before the chat list or
a chat is read: the account's settings in one statement (:mod:`workers.whatsmeowstore`),
then the chats that differ in one transaction. Its cost follows the number of chats
whatsmeow has settings for (those ever archived, pinned or muted), not of stored chats.
Only a logged-in session's store has a device to read for.
"""

from __future__ import annotations

import logging
import sqlite3

import psycopg
from neonize.utils.jid import Jid2String

from workers.operations.context import Context

log = logging.getLogger(__name__)


def refresh(ctx: Context, jid: str | None = None) -> None:
    """Bring the stored pinned and archived flags of every chat (or one) up to whatsmeow's."""
    if ctx.session.me is None:
        return
    device = Jid2String(ctx.client.get_me().JID)
    try:
        flags = ctx.whatsmeow.chat_settings(device, jid)
    except (sqlite3.Error, psycopg.Error) as exc:
        log.warning("whatsmeow's chat settings cannot be read: %s", exc)
        return
    ctx.store.follow_chat_flags(flags)
