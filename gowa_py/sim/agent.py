"""A scriptable neonize client: JSON-line events out, JSON-line commands in.

The sandbox runs one per simulated contact (``POST /sim/phones/{p}/send``): a real
whatsmeow companion of the contact's phone, so the messages it sends are genuinely
end-to-end encrypted and the receiving session decrypts them like any other. The
sandbox tests drive the same program as their client harness.

Events (stdout): ``qr``, ``pair_status``, ``connected``, ``disconnected``,
``logged_out``, ``connect_failure``, ``stream_error``, ``offline_sync``, ``message``,
``joined_group``, ``group_info``,
``undecryptable``, ``receipt``, ``chat_presence``, ``presence``, plus one reply per
command (``sent``, ``marked_read``, ... or ``error``) and ``connect_error``/``exited``.
Commands (stdin): ``send {to, text}``, ``send_document {to, data, mimetype, filename}``
(``data`` base64; whatsmeow encrypts and uploads it to the sandbox CDN), ``mark_read
{id}``, ``presence {available}``, ``push_name {name}`` (an app-state patch),
``app_state {type, index, version, value}`` (one mutation through neonize's
``send_app_state``: ``type`` a ``PatchInfo.WAPatchName`` number, ``value`` a
``SyncActionValue`` as a dict), ``chat_settings {jid}`` (what whatsmeow stored of the
chat's app state: archived, pinned, muted until),
``typing {to}``, ``subscribe {to}``, ``create_group {name, participants}``,
``group_add {group, phone}``, ``history {chats}`` (the history sync to the account's
other companions, see :mod:`.history`), ``pair_phone {phone}``, ``disconnect``, ``exit``.
``to`` is a phone number or a full JID (``...@g.us``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import sqlite3
import sys
import threading
import time
from typing import Any

from . import redirect
from .history import history_blob, notification

_print_lock = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()


def jid_text(jid: Any) -> str:
    """Textual form of a neonize ``JID`` protobuf (``user[:device]@server``)."""
    text = f"{jid.User}@{jid.Server}" if jid.User else jid.Server
    return text.replace("@", f":{jid.Device}@", 1) if jid.Device else text


def serve(db_path: str, proxy: str) -> None:
    """Connect a neonize client (library already loaded and patched) and serve commands."""
    from neonize._binder import ProxySettings
    from neonize.client import NewClient
    from neonize.events import (
        ChatPresenceEv,
        ConnectedEv,
        ConnectFailureEv,
        DisconnectedEv,
        GroupInfoEv,
        JoinedGroupEv,
        LoggedOutEv,
        MessageEv,
        OfflineSyncCompletedEv,
        PairStatusEv,
        PresenceEv,
        ReceiptEv,
        StreamErrorEv,
        UndecryptableMessageEv,
    )
    from neonize.proto.Neonize_pb2 import ChatPresence as ChatPresenceState
    from neonize.proto.Neonize_pb2 import Receipt
    from neonize.utils.enum import (
        ChatPresence,
        ChatPresenceMedia,
        ParticipantChange,
        Presence,
        ReceiptType,
    )
    from neonize.utils.jid import build_jid

    # WAL, as the workers' stores: whatsmeow writes its 812 new prekeys one by one, each a
    # synced commit in SQLite's default journal mode (seconds before the first send).
    with contextlib.closing(sqlite3.connect(db_path)) as store:
        store.execute("PRAGMA journal_mode=WAL")
    client = NewClient(os.path.abspath(db_path))
    sources: dict[str, Any] = {}

    @client.event.qr
    def on_qr(_client: Any, data: bytes) -> None:
        emit("qr", qr=data.decode())

    @client.event(ConnectedEv)
    def on_connected(_client: Any, _ev: Any) -> None:
        me = client.get_me()
        emit("connected", jid=jid_text(me.JID), lid=jid_text(me.LID))

    @client.event(PairStatusEv)
    def on_pair(_client: Any, ev: Any) -> None:
        emit("pair_status", status=int(ev.Status), id=jid_text(ev.ID), error=ev.Error)

    @client.event(DisconnectedEv)
    def on_disconnected(_client: Any, _ev: Any) -> None:
        emit("disconnected")

    @client.event(LoggedOutEv)
    def on_logged_out(_client: Any, ev: Any) -> None:
        emit("logged_out", on_connect=ev.OnConnect, reason=int(ev.Reason))

    @client.event(ConnectFailureEv)
    def on_connect_failure(_client: Any, ev: Any) -> None:
        emit("connect_failure", reason=int(ev.Reason), message=ev.Message)

    @client.event(StreamErrorEv)
    def on_stream_error(_client: Any, ev: Any) -> None:
        emit("stream_error", code=ev.Code)

    @client.event(OfflineSyncCompletedEv)
    def on_offline_sync(_client: Any, ev: Any) -> None:
        emit("offline_sync", count=ev.Count)

    @client.event(MessageEv)
    def on_message(_client: Any, ev: Any) -> None:
        src = ev.Info.MessageSource
        sources[ev.Info.ID] = src
        emit(
            "message",
            id=ev.Info.ID,
            chat=jid_text(src.Chat),
            sender=jid_text(src.Sender),
            sender_alt=jid_text(src.SenderAlt),
            from_me=src.IsFromMe,
            is_group=src.IsGroup,
            push_name=ev.Info.Pushname,
            text=ev.Message.conversation or ev.Message.extendedTextMessage.text,
        )

    @client.event(UndecryptableMessageEv)
    def on_undecryptable(_client: Any, ev: Any) -> None:
        emit("undecryptable", id=ev.Info.ID)

    @client.event(ReceiptEv)
    def on_receipt(_client: Any, ev: Any) -> None:
        emit(
            "receipt",
            type=Receipt.ReceiptType.Name(ev.Type),
            ids=list(ev.MessageIDs),
            chat=jid_text(ev.MessageSource.Chat),
            sender=jid_text(ev.MessageSource.Sender),
        )

    @client.event(ChatPresenceEv)
    def on_chat_presence(_client: Any, ev: Any) -> None:
        emit(
            "chat_presence",
            chat=jid_text(ev.MessageSource.Chat),
            sender=jid_text(ev.MessageSource.Sender),
            state=ChatPresenceState.ChatPresence.Name(ev.State),
        )

    @client.event(JoinedGroupEv)
    def on_joined_group(_client: Any, ev: Any) -> None:
        emit("joined_group", jid=jid_text(ev.GroupInfo.JID), name=ev.GroupInfo.GroupName.Name)

    @client.event(GroupInfoEv)
    def on_group_info(_client: Any, ev: Any) -> None:
        emit(
            "group_info",
            jid=jid_text(ev.JID),
            join=[jid_text(j) for j in ev.Join],
            leave=[jid_text(j) for j in ev.Leave],
        )

    @client.event(PresenceEv)
    def on_presence(_client: Any, ev: Any) -> None:
        emit("presence", jid=jid_text(ev.From), unavailable=ev.Unavailable)

    def to_jid(text: str) -> Any:
        """A phone number, or a full ``user@server`` JID such as a group's."""
        user, _, server = text.partition("@")
        return build_jid(user, server) if server else build_jid(user)

    def run_command(cmd: dict[str, Any]) -> None:
        name = cmd.get("cmd")
        if name == "send":
            resp = client.send_message(to_jid(cmd["to"]), cmd["text"])
            emit("sent", id=resp.ID, to=cmd["to"], timestamp=resp.Timestamp)
        elif name == "send_document":
            document = client.build_document_message(
                base64.b64decode(cmd["data"]),
                title=cmd["filename"],
                filename=cmd["filename"],
                mimetype=cmd["mimetype"],
            )
            resp = client.send_message(to_jid(cmd["to"]), document)
            emit("sent", id=resp.ID, to=cmd["to"], timestamp=resp.Timestamp)
        elif name == "mark_read":
            src = sources[cmd["id"]]
            client.mark_read(cmd["id"], chat=src.Chat, sender=src.Sender, receipt=ReceiptType.READ)
            emit("marked_read", id=cmd["id"])
        elif name == "presence":
            available = cmd.get("available", True)
            client.send_presence(Presence.AVAILABLE if available else Presence.UNAVAILABLE)
            emit("presence_sent", available=available)
        elif name == "push_name":
            client.set_profile_name(cmd["name"])
            emit("push_name_set", name=cmd["name"])
        elif name == "app_state":
            from neonize.proto import Neonize_pb2 as pb
            from neonize.proto.waSyncAction.WAWebProtobufSyncAction_pb2 import SyncActionValue

            mutation = pb.MutationInfo(
                Index=cmd["index"], Version=cmd["version"], Value=SyncActionValue(**cmd["value"])
            )
            patch = pb.PatchInfo(Timestamp=int(time.time()), Type=cmd["type"], Mutations=[mutation])
            client.send_app_state(patch)
            emit("app_state_sent", type=cmd["type"])
        elif name == "chat_settings":
            settings = client.chat_settings.get_chat_settings(to_jid(cmd["jid"]))
            emit(
                "chat_settings",
                jid=cmd["jid"],
                found=settings.Found,
                archived=settings.Archived,
                pinned=settings.Pinned,
                muted_until=settings.MutedUntil,
            )
        elif name == "typing":
            client.send_chat_presence(
                build_jid(cmd["to"]),
                ChatPresence.CHAT_PRESENCE_COMPOSING,
                ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT,
            )
            emit("typing_sent", to=cmd["to"])
        elif name == "subscribe":
            client.subscribe_presence(build_jid(cmd["to"]))
            emit("subscribed", to=cmd["to"])
        elif name == "create_group":
            info = client.create_group(cmd["name"], [build_jid(p) for p in cmd["participants"]])
            emit(
                "group_created",
                jid=jid_text(info.JID),
                name=info.GroupName.Name,
                participants=[jid_text(p.JID) for p in info.Participants],
            )
        elif name == "group_add":
            client.update_group_participants(
                to_jid(cmd["group"]), [build_jid(cmd["phone"])], ParticipantChange.ADD
            )
            emit("group_added", group=cmd["group"], phone=cmd["phone"])
        elif name == "history":
            from neonize.utils.enum import MediaType

            upload = client.upload(history_blob(cmd["chats"]), MediaType.MediaHistory)
            own = client.get_me().JID
            resp = client.send_message(build_jid(own.User), notification(upload))
            emit("history_sent", id=resp.ID, chats=len(cmd["chats"]))
        elif name == "pair_phone":
            emit("pair_code", code=client.PairPhone(cmd["phone"], show_push_notification=True))
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
            try:
                cmd = json.loads(line)
                run_command(cmd)
            except Exception as exc:  # reported to the driver, which decides what it means
                emit("error", cmd=line.strip()[:80], error=f"{type(exc).__name__}: {exc}")
        os._exit(0)

    threading.Thread(target=command_loop, name="agent-commands", daemon=True).start()
    try:
        client.connect(ProxySettings(proxy_address=proxy))
    except Exception as exc:
        emit("connect_error", error=f"{type(exc).__name__}: {exc}")
    emit("exited")
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gowa_py.sim.agent")
    parser.add_argument("--db", required=True, help="neonize sqlite store of this companion")
    parser.add_argument("--proxy", required=True, help="the sandbox URL (http://host:port)")
    parser.add_argument("--ca", required=True, help="the sandbox CA (ca.pem)")
    parser.add_argument("--root-key", required=True, help="the sandbox root key, hex")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    redirect.trust_ca(args.ca)
    from neonize import _binder  # noqa: F401  (loads the Go library)

    redirect.patch_root_key(bytes.fromhex(args.root_key))
    serve(args.db, args.proxy)


if __name__ == "__main__":
    main()
