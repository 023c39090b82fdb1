"""GoWA's webhook events besides messages, receipts and calls (docs/webhook-payload.md):
``chat_presence``, ``group.participants``, ``group.joined`` and the ``newsletter.*`` events.

Every JID is given as a phone JID where whatsmeow knows the phone behind a LID, the LID
in its own field. ``label.*`` and ``message.deleted`` come from app-state sync, which
neonize does not surface as events; they are not emitted.
"""

from __future__ import annotations

from typing import Any

from neonize.proto import Neonize_pb2 as pb
from neonize.utils.message import extract_text

from workers import lids, payloads
from workers.operations.context import Context
from workers.timefmt import rfc3339

CHANGES = (("join", "Join"), ("leave", "Leave"), ("promote", "Promote"), ("demote", "Demote"))
MUTE = {pb.NewsletterMuteState.ON: "on", pb.NewsletterMuteState.OFF: "off"}
ROLES = {
    pb.NewsletterRole.SUBSCRIBER: "subscriber",
    pb.NewsletterRole.GUEST: "guest",
    pb.NewsletterRole.ADMIN: "admin",
    pb.NewsletterRole.OWNER: "owner",
}


class Updates:
    """neonize event handlers (Go threads) that emit GoWA's events through the context."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _phone(self, jid: pb.JID) -> str:
        if jid.Server == lids.LID_SERVER:
            pn = self.ctx.session.people.pn(jid)
            if pn is not None:
                return lids.bare(pn)
        return lids.bare(jid)

    def on_chat_presence(self, _client: Any, event: pb.ChatPresence) -> None:
        source = event.MessageSource
        payload = payloads.sender_fields(source, self.ctx.session.people)
        payloads.with_display_name(payload, self.ctx.session.people)
        payload["state"] = "composing" if event.State == pb.ChatPresence.COMPOSING else "paused"
        payload["media"] = "audio" if event.Media == pb.ChatPresence.AUDIO else ""
        payload["is_group"] = source.IsGroup
        self.ctx.emit("chat_presence", payload)

    def on_group_info(self, _client: Any, event: pb.GroupInfoEvent) -> None:
        chat = lids.bare(event.JID)
        for kind, field in CHANGES:
            changed = getattr(event, field)
            if not changed:
                continue
            payload: dict[str, Any] = {
                "chat_id": chat,
                "type": kind,
                "jids": [self._phone(jid) for jid in changed],
            }
            lid_jids = [lids.bare(jid) for jid in changed if jid.Server == lids.LID_SERVER]
            if lid_jids:
                payload["lids"] = lid_jids
            self.ctx.emit("group.participants", payload)

    def on_joined_group(self, _client: Any, event: pb.JoinedGroup) -> None:
        info = event.GroupInfo
        me = self.ctx.session.me
        payload: dict[str, Any] = {
            "chat_id": lids.bare(info.JID),
            "type": "join",
            "jids": [me.jid] if me is not None else [],
            "reason": event.Reason,
        }
        if info.GroupName.Name:
            payload["group_name"] = info.GroupName.Name
        self.ctx.emit("group.joined", payload)

    def on_newsletter_join(self, _client: Any, event: pb.NewsletterJoin) -> None:
        meta = event.NewsletterMetadata
        self.ctx.emit(
            "newsletter.joined",
            {
                "newsletter_id": lids.bare(meta.ID),
                "name": meta.ThreadMeta.Name.Text,
                "description": meta.ThreadMeta.Description.Text,
            },
        )

    def on_newsletter_leave(self, _client: Any, event: pb.NewsletterLeave) -> None:
        self.ctx.emit(
            "newsletter.left",
            {
                "newsletter_id": lids.bare(event.ID),
                "role": ROLES.get(event.Role, ""),
            },
        )

    def on_newsletter_mute(self, _client: Any, event: pb.NewsletterMuteChange) -> None:
        self.ctx.emit(
            "newsletter.mute",
            {
                "newsletter_id": lids.bare(event.ID),
                "mute": MUTE.get(event.Mute, ""),
            },
        )

    def on_newsletter_update(self, _client: Any, event: pb.NewsletterLiveUpdate) -> None:
        """neonize's live update has no message id, type or time per message: those are
        given as GoWA names them, empty or the update's time."""
        stamp = rfc3339(event.TIME) if event.TIME else ""
        messages = []
        for item in event.Messages:
            entry: dict[str, Any] = {
                "server_id": item.MessageServerID,
                "message_id": "",
                "type": "text" if extract_text(item.Message) else "",
                "timestamp": stamp,
            }
            if item.ViewsCount:
                entry["views_count"] = item.ViewsCount
            if item.ReactionCounts:
                entry["reaction_counts"] = {r.type: r.count for r in item.ReactionCounts}
            messages.append(entry)
        self.ctx.emit(
            "newsletter.message", {"newsletter_id": lids.bare(event.JID), "messages": messages}
        )


def register(client: Any, ctx: Context) -> None:
    """Have ``client`` hand these events to a new :class:`Updates` of ``ctx``."""
    from neonize.events import (
        ChatPresenceEv,
        GroupInfoEv,
        JoinedGroupEv,
        NewsletterJoinEv,
        NewsletterLeaveEv,
        NewsletterLiveUpdateEV,
        NewsletterMuteChangeEv,
    )

    updates = Updates(ctx)
    ctx.handlers.append(updates)
    client.event(ChatPresenceEv)(updates.on_chat_presence)
    client.event(GroupInfoEv)(updates.on_group_info)
    client.event(JoinedGroupEv)(updates.on_joined_group)
    client.event(NewsletterJoinEv)(updates.on_newsletter_join)
    client.event(NewsletterLeaveEv)(updates.on_newsletter_leave)
    client.event(NewsletterMuteChangeEv)(updates.on_newsletter_mute)
    client.event(NewsletterLiveUpdateEV)(updates.on_newsletter_update)
