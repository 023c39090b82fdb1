"""GoWA's ``/send/*`` operations (text, media by upload or URL, contact, link, poll...)."""

from __future__ import annotations

from gowa_py import operations as ops
from gowa_py.gateway.gowa.operation import OpRoute

SEND = "send"

ROUTES = [
    OpRoute("POST", "/send/message", ops.SendMessage, SEND, "Send text", body="json"),
    OpRoute(
        "POST", "/send/image", ops.SendImage, SEND, "Send image", body="form", media=("image",)
    ),
    OpRoute(
        "POST",
        "/send/audio",
        ops.SendAudio,
        SEND,
        "Send audio (needs ffmpeg)",
        body="form",
        media=("audio",),
    ),
    OpRoute("POST", "/send/file", ops.SendFile, SEND, "Send file", body="form", media=("file",)),
    OpRoute(
        "POST",
        "/send/sticker",
        ops.SendSticker,
        SEND,
        "Send sticker (animated needs ffmpeg)",
        body="form",
        media=("sticker",),
    ),
    OpRoute(
        "POST",
        "/send/video",
        ops.SendVideo,
        SEND,
        "Send video (needs ffmpeg)",
        body="form",
        media=("video",),
    ),
    OpRoute("POST", "/send/contact", ops.SendContact, SEND, "Send contact", body="json"),
    OpRoute("POST", "/send/link", ops.SendLink, SEND, "Send link", body="json"),
    OpRoute("POST", "/send/location", ops.SendLocation, SEND, "Send location", body="json"),
    OpRoute("POST", "/send/poll", ops.SendPoll, SEND, "Send poll", body="json"),
    OpRoute("POST", "/send/presence", ops.SendPresence, SEND, "Set presence", body="json"),
    OpRoute(
        "POST", "/send/chat-presence", ops.SendChatPresence, SEND, "Typing indicator", body="json"
    ),
]
