"""The history sync a phone sends its new companion after pairing: recent chats and
their messages go into the chat store, so ``/chats`` and ``/chat/{jid}/messages`` show
them right after login (GoWA stores them the same way). No webhook events: these
messages are history, not news."""

from __future__ import annotations

import logging
from typing import Any

from neonize.proto import Neonize_pb2 as pb

from workers import lids, payloads
from workers.jid import parse_jid
from workers.operations.context import Context
from workers.operations.messages import describe, seconds

log = logging.getLogger(__name__)


class History:
    """Stores each history sync chunk whatsmeow downloaded (a Go thread calls it)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _chat(self, value: str) -> str:
        """The chat's phone JID where the session knows the phone behind a LID."""
        jid = parse_jid(value)
        if jid.Server == lids.LID_SERVER:
            pn = self.ctx.session.people.pn(jid)
            if pn is not None:
                return lids.bare(pn)
        return payloads.non_ad(jid)

    def on_history_sync(self, _client: Any, event: pb.HistorySync) -> None:
        me = self.ctx.session.me
        stored = 0
        for conversation in event.Data.conversations:
            try:
                chat = self._chat(conversation.ID)
            except Exception:
                log.warning("history sync: skipping chat %r", conversation.ID)
                continue
            group = chat.endswith("@g.us")
            for item in conversation.messages:
                info = item.message
                content = describe(info.message)
                if not content or not info.key.ID:
                    continue
                from_me = info.key.fromMe
                sender = info.participant or info.key.participant or chat
                self.ctx.store.add_message(
                    id=info.key.ID,
                    chat_jid=chat,
                    sender_jid=me.jid if from_me and me is not None else sender,
                    sender_name="" if from_me else info.pushName,
                    chat_name="" if group or from_me else info.pushName,
                    timestamp=seconds(info.messageTimestamp),
                    is_from_me=from_me,
                    content=content,
                    status="sent" if from_me else "",
                    raw=info.message.SerializeToString(),
                )
                stored += 1
            if conversation.name:
                self.ctx.store.set_chat(chat, name=conversation.name)
        log.info("history sync: %d messages in %d chats", stored, len(event.Data.conversations))


def register(client: Any, ctx: Context) -> None:
    """Have ``client`` hand history sync chunks to a new :class:`History` of ``ctx``."""
    from neonize.events import HistorySyncEv

    history = History(ctx)
    ctx.handlers.append(history)
    client.event(HistorySyncEv)(history.on_history_sync)
