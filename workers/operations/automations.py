"""What a worker does by itself when an event arrives, as the session's settings ask.

Auto-download of incoming media, auto-mark-read, auto-reply, call rejection and the
presence sent on connect. Each runs on the context's background threads: the observer
that starts it is called on a Go thread, which must not wait for WhatsApp.
"""

from __future__ import annotations

import logging
from typing import Any

from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as e2e

from workers import lids, payloads
from workers.operations.context import Context
from workers.operations.media import download_to_disk
from workers.operations.messages import send
from workers.timefmt import rfc3339

log = logging.getLogger("gowa.worker.operations")


class Automations:
    """The per-session automations; they read the settings live from the context."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def on_call_offer(self, _client: Any, event: pb.CallOffer) -> None:
        meta, remote = event.basicCallMeta, event.callRemoteMeta
        creator = meta.callCreator if meta.callCreator.User else getattr(meta, "from")
        people = self.ctx.session.people
        payload: dict[str, Any] = {"call_id": meta.callID}
        if creator.Server == lids.LID_SERVER:
            payload["from_lid"] = payloads.non_ad(creator)
        pn = None
        if creator.Server == lids.LID_SERVER:
            # The offer's caller_pn, else what the session learnt of that LID before.
            alt = meta.callCreatorAlt
            pn = alt if alt.User and alt.Server != lids.LID_SERVER else people.pn(creator)
        payload["from"] = payloads.non_ad(pn if pn is not None else creator)
        payloads.with_display_name(payload, people)
        payload["auto_rejected"] = self.ctx.settings.auto_reject_call
        if remote.remotePlatform:
            payload["remote_platform"] = remote.remotePlatform
        if remote.remoteVersion:
            payload["remote_version"] = remote.remoteVersion
        payload["timestamp"] = rfc3339(meta.timestamp)
        self.ctx.emit("call.offer", payload)
        if self.ctx.settings.auto_reject_call:
            self.ctx.background.submit(self._reject, getattr(meta, "from"), meta.callID)

    def _reject(self, caller: pb.JID, call_id: str) -> None:
        try:
            self.ctx.client.reject_call(caller, call_id)
        except Exception as exc:
            log.warning("auto-reject of call %s failed: %s", call_id, exc)

    def presence_on_connect(self) -> None:
        from neonize.utils.enum import Presence

        choice = self.ctx.settings.presence_on_connect
        if choice not in ("available", "unavailable"):
            return
        try:
            self.ctx.client.send_presence(Presence(choice.encode()))
        except Exception as exc:
            log.warning("presence on connect failed: %s", exc)

    def download(self, chat: str, message_id: str, message: e2e.Message) -> None:
        try:
            download_to_disk(self.ctx, chat, message_id, message)
        except Exception as exc:
            log.warning("auto-download of %s failed: %s", message_id, exc)

    def mark_read(self, event: pb.Message) -> None:
        from neonize.utils.enum import ReceiptType

        source = event.Info.MessageSource
        try:
            self.ctx.client.mark_read(
                event.Info.ID, chat=source.Chat, sender=source.Sender, receipt=ReceiptType.READ
            )
        except Exception as exc:
            log.warning("auto-read failed: %s", exc)

    def auto_reply(self, chat: str, text: str) -> None:
        try:
            send(self.ctx, chat, e2e.Message(conversation=text), text, kind="text")
        except Exception as exc:
            log.warning("auto-reply to %s failed: %s", chat, exc)
