"""GoWA's ``/chats`` and ``/chat/{chat_jid}/*`` operations, served from the chat storage."""

from __future__ import annotations

from gowa_py import operations as ops
from gowa_py.gateway.gowa.operation import OpRoute

CHAT = "chat"
C = "/chat/{chat_jid}"

ROUTES = [
    OpRoute("GET", "/chats", ops.ListChats, CHAT, "List chats (chat storage)"),
    OpRoute("GET", f"{C}/messages", ops.ChatMessages, CHAT, "Messages of a chat (chat storage)"),
    OpRoute("POST", f"{C}/pin", ops.PinChat, CHAT, "Pin or unpin", body="json"),
    OpRoute(
        "POST", f"{C}/disappearing", ops.SetDisappearing, CHAT, "Disappearing timer", body="json"
    ),
    OpRoute("POST", f"{C}/archive", ops.ArchiveChat, CHAT, "Archive or unarchive", body="json"),
]
