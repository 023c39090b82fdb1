"""The history sync a phone sends a newly linked companion, built from a JSON list of
chats (``POST /sim/phones/{phone}/history``).

WhatsApp's phone uploads a zlib-compressed ``HistorySync`` protobuf to the media CDN
(media type ``md-msg-hist``) and sends the companion a ``HistorySyncNotification``
protocol message holding its key and path. whatsmeow accepts that notification from
any device of its own account (``info.IsFromMe``), so the phone's agent (a companion of
the same account, see :mod:`.agent`) sends it; it is then downloaded and decrypted by
whatsmeow like any history sync. Runs in the agent process (it needs neonize's protos).
"""

from __future__ import annotations

import zlib
from typing import Any


def valid_chats(chats: Any) -> list[dict[str, Any]]:
    """``chats`` if it is a list of ``{"jid", "name", "messages": [{"id", "from_me",
    "text", "t"}]}`` (``name``, ``messages`` and ``from_me`` optional); else ValueError."""
    if not isinstance(chats, list) or not all(_valid_chat(c) for c in chats):
        raise ValueError(
            "'chats' must be a list of {jid, name, messages: [{id, from_me, text, t}]}"
        )
    return chats


def _valid_chat(chat: Any) -> bool:
    if not isinstance(chat, dict) or not isinstance(chat.get("jid"), str) or "@" not in chat["jid"]:
        return False
    messages = chat.get("messages", [])
    return (
        isinstance(chat.get("name", ""), str)
        and isinstance(messages, list)
        and all(
            isinstance(m, dict)
            and isinstance(m.get("id"), str)
            and isinstance(m.get("text"), str)
            and isinstance(m.get("t"), int)
            and isinstance(m.get("from_me", False), bool)
            for m in messages
        )
    )


def history_blob(chats: list[dict[str, Any]]) -> bytes:
    """The compressed ``HistorySync`` (type RECENT, one chunk) holding ``chats``: each
    ``{"jid", "name", "messages": [{"id", "from_me", "text", "t"}]}``."""
    from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as e2e
    from neonize.proto.waHistorySync import WAWebProtobufsHistorySync_pb2 as hs
    from neonize.proto.waWeb import WAWebProtobufsWeb_pb2 as web

    sync = hs.HistorySync(syncType=hs.HistorySync.RECENT, chunkOrder=1, progress=100)
    for chat in chats:
        conversation = sync.conversations.add(ID=chat["jid"], name=chat.get("name", ""))
        messages = sorted(chat.get("messages", []), key=lambda m: m["t"])
        for order, item in enumerate(messages, start=1):
            info = web.WebMessageInfo(
                message=e2e.Message(conversation=item["text"]),
                messageTimestamp=item["t"],
            )
            info.key.remoteJID = chat["jid"]
            info.key.fromMe = bool(item.get("from_me"))
            info.key.ID = item["id"]
            if not info.key.fromMe and chat.get("name"):
                info.pushName = chat["name"]
            conversation.messages.add(message=info, msgOrderID=order)
        if messages:
            conversation.lastMsgTimestamp = messages[-1]["t"]
        if chat.get("name"):
            sync.pushnames.add(ID=chat["jid"], pushname=chat["name"])
    return zlib.compress(sync.SerializeToString())


def notification(upload: Any) -> Any:
    """The protocol message announcing an uploaded history blob (``upload``: neonize's
    ``UploadResponse``)."""
    from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as e2e

    note = e2e.HistorySyncNotification(
        fileSHA256=upload.FileSHA256,
        fileLength=upload.FileLength,
        mediaKey=upload.MediaKey,
        fileEncSHA256=upload.FileEncSHA256,
        directPath=upload.DirectPath,
        syncType=e2e.HistorySyncType.Value("RECENT"),
        chunkOrder=1,
        progress=100,
    )
    protocol = e2e.ProtocolMessage(
        type=e2e.ProtocolMessage.HISTORY_SYNC_NOTIFICATION, historySyncNotification=note
    )
    return e2e.Message(protocolMessage=protocol)
