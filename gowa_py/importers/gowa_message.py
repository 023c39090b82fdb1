"""The original WhatsApp message of a GoWA chat-storage row, rebuilt for ``messages.raw``.

A session keeps each message's protobuf: downloading its media, forwarding it and quoting
it in a reply need it. GoWA stores no protobuf, only what it extracted: the text, and for
media its kind, file name, URL, direct path, media key, both SHA-256s and size, which is
all whatsmeow needs to fetch and decrypt the file again. So a text row becomes a
``conversation`` and a media row the media message it came from.
"""

from __future__ import annotations

import mimetypes
import sqlite3
from typing import Any

#: GoWA's media_type -> the Message field it came from (utils.ExtractMediaInfo), and the
#: mimetype when the file name gives none. A video note (ptvMessage) is kept as a video:
#: the same media keys, and the field the session's download knows.
_MEDIA = {
    "image": ("imageMessage", "image/jpeg"),
    "video": ("videoMessage", "video/mp4"),
    "video_note": ("videoMessage", "video/mp4"),
    "audio": ("audioMessage", "audio/ogg; codecs=opus"),
    "ptt": ("audioMessage", "audio/ogg; codecs=opus"),
    "document": ("documentMessage", "application/octet-stream"),
    "sticker": ("stickerMessage", "image/webp"),
}
_CAPTIONED = ("imageMessage", "videoMessage", "documentMessage")


def mimetype(row: sqlite3.Row) -> str:
    """The row's media mimetype (GoWA keeps none): from its file name, else its kind's."""
    entry = _MEDIA.get(row["media_type"] or "")
    if entry is None:
        return ""
    guessed, _ = mimetypes.guess_type(row["filename"] or "")
    return guessed or entry[1]


def rebuild(row: sqlite3.Row) -> bytes | None:
    """The serialized ``waE2E.Message`` of the row; None when it cannot be rebuilt (a
    call record, or media whose keys GoWA did not keep)."""
    # neonize loads its Go library on import: only the import command pays for it.
    from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as e2e

    keys = row.keys()
    kind = row["media_type"] or ""
    content = row["content"] or ""
    if not kind:
        return e2e.Message(conversation=content).SerializeToString() if content else None
    entry = _MEDIA.get(kind)
    if entry is None or "media_key" not in keys or not row["media_key"]:
        return None
    field = entry[0]
    media: dict[str, Any] = {
        "URL": row["url"] or "",
        "mimetype": mimetype(row),
        "mediaKey": row["media_key"],
        "fileSHA256": row["file_sha256"] or b"",
        "fileEncSHA256": row["file_enc_sha256"] or b"",
        "fileLength": row["file_length"] or 0,
    }
    if "direct_path" in keys and row["direct_path"]:
        media["directPath"] = row["direct_path"]
    if field == "documentMessage":
        media["fileName"] = row["filename"] or ""
    if field in _CAPTIONED and content:
        media["caption"] = content
    message = e2e.Message()
    part = getattr(message, field)
    for name, value in media.items():
        setattr(part, name, value)
    return message.SerializeToString()
