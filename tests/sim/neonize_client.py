"""A real neonize client driven over stdin/stdout, for the sandbox integration tests.

Usage: ``python neonize_client.py --db PATH --proxy URL --ca CA_PEM --root-key HEX
[--no-patch]``. Events are printed as JSON lines (``{"event": ...}``); commands are read
as JSON lines from stdin (``{"cmd": "send", "to": "1555...", "text": "hi"}``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from workers import sandbox  # noqa: E402

_print_lock = threading.Lock()


def emit(event: str, **fields: object) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()


def jid_str(jid) -> str:
    text = f"{jid.User}@{jid.Server}" if jid.User else jid.Server
    return text.replace("@", f":{jid.Device}@", 1) if jid.Device else text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--proxy", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--root-key", required=True)
    parser.add_argument("--no-patch", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    sandbox.trust_ca(args.ca)
    from neonize import _binder  # noqa: F401  (loads the Go library)
    from neonize.client import NewClient
    from neonize.events import (
        ChatPresenceEv,
        ConnectedEv,
        ConnectFailureEv,
        DisconnectedEv,
        LoggedOutEv,
        MessageEv,
        OfflineSyncCompletedEv,
        PairStatusEv,
        PresenceEv,
        ReceiptEv,
        StreamErrorEv,
        UndecryptableMessageEv,
    )
    from neonize.proto.Neonize_pb2 import Receipt
    from neonize.utils.enum import ChatPresence, ChatPresenceMedia, Presence, ReceiptType
    from neonize.utils.jid import build_jid

    if not args.no_patch:
        sandbox.patch_root_key(bytes.fromhex(args.root_key))
        sandbox.patch_root_key(bytes.fromhex(args.root_key))  # idempotent
    client = NewClient(os.path.abspath(args.db))
    messages: dict[str, object] = {}

    @client.event.qr
    def on_qr(_client, data: bytes) -> None:
        emit("qr", qr=data.decode())

    @client.event(ConnectedEv)
    def on_connected(_client, _ev) -> None:
        me = client.get_me()
        emit("connected", jid=jid_str(me.JID), lid=jid_str(me.LID))

    @client.event(PairStatusEv)
    def on_pair(_client, ev) -> None:
        emit("pair_status", status=int(ev.Status), id=jid_str(ev.ID), error=ev.Error)

    @client.event(DisconnectedEv)
    def on_disconnected(_client, _ev) -> None:
        emit("disconnected")

    @client.event(LoggedOutEv)
    def on_logged_out(_client, ev) -> None:
        emit("logged_out", on_connect=ev.OnConnect, reason=int(ev.Reason))

    @client.event(ConnectFailureEv)
    def on_connect_failure(_client, ev) -> None:
        emit("connect_failure", reason=int(ev.Reason), message=ev.Message)

    @client.event(StreamErrorEv)
    def on_stream_error(_client, ev) -> None:
        emit("stream_error", code=ev.Code)

    @client.event(OfflineSyncCompletedEv)
    def on_offline_sync(_client, ev) -> None:
        emit("offline_sync", count=ev.Count)

    @client.event(MessageEv)
    def on_message(_client, ev) -> None:
        src = ev.Info.MessageSource
        messages[ev.Info.ID] = src
        text = ev.Message.conversation or ev.Message.extendedTextMessage.text
        emit("message", id=ev.Info.ID, chat=jid_str(src.Chat), sender=jid_str(src.Sender),
             sender_alt=jid_str(src.SenderAlt), from_me=src.IsFromMe, is_group=src.IsGroup,
             push_name=ev.Info.Pushname, text=text)

    @client.event(UndecryptableMessageEv)
    def on_undecryptable(_client, ev) -> None:
        emit("undecryptable", id=ev.Info.ID)

    @client.event(ReceiptEv)
    def on_receipt(_client, ev) -> None:
        emit("receipt", type=Receipt.ReceiptType.Name(ev.Type), ids=list(ev.MessageIDs),
             chat=jid_str(ev.MessageSource.Chat), sender=jid_str(ev.MessageSource.Sender))

    @client.event(ChatPresenceEv)
    def on_chat_presence(_client, ev) -> None:
        emit("chat_presence", chat=jid_str(ev.MessageSource.Chat), state=int(ev.State))

    @client.event(PresenceEv)
    def on_presence(_client, ev) -> None:
        emit("presence", jid=jid_str(ev.From), unavailable=ev.Unavailable)

    def run_command(cmd: dict) -> None:
        name = cmd.get("cmd")
        if name == "send":
            resp = client.send_message(build_jid(cmd["to"]), cmd["text"])
            emit("sent", id=resp.ID, to=cmd["to"])
        elif name == "mark_read":
            src = messages[cmd["id"]]
            client.mark_read(cmd["id"], chat=src.Chat, sender=src.Sender,
                             receipt=ReceiptType.READ)
            emit("marked_read", id=cmd["id"])
        elif name == "presence":
            client.send_presence(Presence.AVAILABLE if cmd.get("available", True)
                                 else Presence.UNAVAILABLE)
            emit("presence_sent")
        elif name == "typing":
            client.send_chat_presence(build_jid(cmd["to"]),
                                      ChatPresence.CHAT_PRESENCE_COMPOSING,
                                      ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT)
            emit("typing_sent")
        elif name == "subscribe":
            client.subscribe_presence(build_jid(cmd["to"]))
            emit("subscribed")
        elif name == "disconnect":
            client.disconnect()
            emit("disconnect_done")
        elif name == "exit":
            emit("bye")
            os._exit(0)
        else:
            emit("error", cmd=name, error="unknown command")

    def command_loop() -> None:
        for line in sys.stdin:
            if not line.strip():
                continue
            cmd = json.loads(line)
            try:
                run_command(cmd)
            except Exception as exc:  # reported to the test, which decides
                emit("error", cmd=cmd.get("cmd"), error=f"{type(exc).__name__}: {exc}")
        os._exit(0)

    threading.Thread(target=command_loop, daemon=True).start()
    from neonize._binder import ProxySettings

    try:
        client.connect(ProxySettings(proxy_address=args.proxy))
    except Exception as exc:
        emit("connect_error", error=f"{type(exc).__name__}: {exc}")
    emit("exited")
    os._exit(0)


if __name__ == "__main__":
    main()
