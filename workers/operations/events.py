"""neonize events into the chat store, and to the automations they start."""

from __future__ import annotations

import logging
from typing import Any

from neonize.proto import Neonize_pb2 as pb
from neonize.utils.message import extract_text

from workers import payloads
from workers.operations.automations import Automations
from workers.operations.context import Context
from workers.operations.messages import describe, media_info, seconds

log = logging.getLogger("gowa.worker.operations")

RECEIPT_STATUS = {
    pb.Receipt.DELIVERED: "delivered",
    pb.Receipt.INACTIVE: "delivered",
    pb.Receipt.READ: "read",
    pb.Receipt.READ_SELF: "read",
    pb.Receipt.PLAYED: "played",
}


class EventObserver:
    """Keeps the chat store current from neonize events (on Go threads)."""

    def __init__(self, ctx: Context, automations: Automations) -> None:
        self.ctx = ctx
        self.automations = automations

    def observe(self, event: Any) -> None:
        """neonize event observer (Go thread): keep the store current, run automations."""
        try:
            if isinstance(event, pb.Message):
                self.on_message(event)
            elif isinstance(event, pb.Receipt):
                status = RECEIPT_STATUS.get(event.Type)
                if status:
                    self.ctx.store.set_status(list(event.MessageIDs), status)
            elif isinstance(event, pb.Connected):
                self.ctx.background.submit(self.automations.presence_on_connect)
        except Exception:
            log.exception("could not record %s", type(event).__name__)

    def on_message(self, event: pb.Message) -> None:
        info, message = event.Info, event.Message
        fields = payloads.sender_fields(info.MessageSource, self.ctx.session.people)
        chat, sender = fields["chat_id"], fields["from"]
        timestamp = seconds(info.Timestamp)
        from_me = info.MessageSource.IsFromMe
        if message.HasField("reactionMessage"):
            reaction = message.reactionMessage
            self.ctx.store.set_reaction(chat, reaction.key.ID, sender, reaction.text, timestamp)
            return
        if message.HasField("protocolMessage"):
            protocol = message.protocolMessage
            if protocol.type == protocol.REVOKE:
                self.ctx.store.revoke(chat, protocol.key.ID)
            elif protocol.type == protocol.MESSAGE_EDIT:
                self.ctx.store.edit(chat, protocol.key.ID, extract_text(protocol.editedMessage))
            return
        content = describe(message)
        media = media_info(message)
        if not content and not media:
            return
        self.ctx.store.add_message(
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
        if media and self.ctx.settings.auto_download_media:
            self.ctx.background.submit(self.automations.download, chat, info.ID, message)
        if self.ctx.settings.auto_mark_read:
            self.ctx.background.submit(self.automations.mark_read, event)
        reply = self.ctx.settings.auto_reply
        if (
            reply
            and not info.MessageSource.IsGroup
            and info.MessageSource.Chat.Server != "broadcast"
        ):
            self.ctx.background.submit(self.automations.auto_reply, chat, reply)
