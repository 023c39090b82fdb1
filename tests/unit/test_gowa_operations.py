"""GoWA operations at the worker boundary: struct/handler/route coverage, validation, storage."""

from __future__ import annotations

import time

import msgspec
import pytest

from gowa_py import operations as ops
from gowa_py import protocol as p
from gowa_py.gateway.errors import ApiError
from gowa_py.gateway.gowa.operation import build_operation
from gowa_py.gateway.gowa.routing import OPERATION_ROUTES
from tests.backends import Backend
from workers.chatstore import ChatStore
from workers.operations.context import HANDLERS


def test_every_operation_has_a_worker_handler_or_a_local_route() -> None:
    local = {route.op for route in OPERATION_ROUTES if route.local is not None}
    routed = {route.op for route in OPERATION_ROUTES}
    for op in ops.OPERATIONS:
        assert op in HANDLERS or op in local, op
        assert op in routed or op is ops.ApplySettings, op


def test_operations_round_trip_through_ipc() -> None:
    op = ops.SendImage(phone="155", image=ops.Upload(data=b"\x89PNG", filename="a.png"))
    request = p.Request(id="1", deadline=0.0, command=p.Operation(input=op))
    assert p.decode_request(p.encode(request)).command == p.Operation(input=op)


def route(op: type[ops.Op]):
    return next(r for r in OPERATION_ROUTES if r.op is op)


def test_form_strings_are_coerced_and_errors_name_the_field() -> None:
    op = build_operation(
        route(ops.SendLocation), {"phone": "155", "latitude": "1.5", "longitude": "2"}
    )
    assert op == ops.SendLocation(phone="155", latitude=1.5, longitude=2.0)
    with pytest.raises(ApiError) as caught:
        build_operation(route(ops.SendLocation), {"phone": "155", "latitude": "91", "longitude": 0})
    assert caught.value.status == 400 and "$.latitude" in caught.value.message
    with pytest.raises(ApiError):
        build_operation(route(ops.SendPoll), {"phone": "1", "question": "q", "options": ["a"]})
    chats = build_operation(route(ops.ListChats), {"limit": "5", "archived": "true"})
    assert chats.limit == 5 and chats.archived is True


def test_unknown_fields_are_accepted_like_gowa() -> None:
    op = build_operation(route(ops.SendMessage), {"phone": "1", "message": "m", "extra": 1})
    assert isinstance(op, ops.SendMessage)


@pytest.fixture
def store(storage_backend: Backend) -> ChatStore:
    return ChatStore(storage_backend.session_db())


def add(store: ChatStore, message_id: str, **kw) -> None:
    fields = {"chat_jid": "1@s.whatsapp.net", "sender_jid": "2@s.whatsapp.net"}
    fields |= {"timestamp": time.time(), "is_from_me": True, "content": "hi", "status": "sent"}
    store.add_message(id=message_id, **(fields | kw))


def test_status_never_goes_back_and_early_receipts_are_kept(store: ChatStore) -> None:
    store.set_status(["early"], "delivered")
    add(store, "early")
    add(store, "m1")
    store.set_status(["m1"], "read")
    store.set_status(["m1"], "delivered")
    assert store.message("early")["status"] == "delivered"
    assert store.message("m1")["status"] == "read"


def test_reactions_edits_revokes_and_listing(store: ChatStore) -> None:
    add(store, "m1", chat_name="Bob", is_from_me=False, status="")
    store.set_reaction("1@s.whatsapp.net", "m1", "3@s.whatsapp.net", "👍", time.time())
    store.edit("1@s.whatsapp.net", "m1", "edited")
    data, total = store.messages("1@s.whatsapp.net", 10, 0)
    assert total == 1 and data[0]["content"] == "edited" and data[0]["is_edited"]
    assert data[0]["reactions"][0]["emoji"] == "👍"
    store.revoke("1@s.whatsapp.net", "m1")
    assert store.message("m1")["revoked"] == 1 and store.message("m1")["content"] == ""
    chats, count = store.chats(10, 0, search="Bob")
    assert count == 1 and chats[0]["name"] == "Bob"
    store.set_chat("1@s.whatsapp.net", archived=1)
    assert store.chats(10, 0, archived=False) == ([], 0)


def test_retention_prunes_old_messages(storage_backend: Backend) -> None:
    store = ChatStore(storage_backend.session_db(), retention_days=1)
    add(store, "old", timestamp=time.time() - 3 * 86400)
    add(store, "new", raw=b"\x00\xffproto")
    assert store.prune() == 1
    assert store.message("old") is None
    assert store.message("new")["raw"] == b"\x00\xffproto"


def test_settings_reach_the_worker_config() -> None:
    from gowa_py.models import SessionConfig

    assert set(ops.ApplySettings.__struct_fields__) <= set(SessionConfig.__struct_fields__)
    config = msgspec.convert({"auto_reply": "away", "presence_on_connect": "none"}, SessionConfig)
    assert config.auto_reply == "away"
    settings = config.worker_settings()
    assert (settings.auto_reply, settings.presence_on_connect) == ("away", "none")
    worker = p.WorkerConfig(
        session_id="s",
        session_dir="/d",
        command_endpoint="ipc:///c",
        event_endpoint="ipc:///e",
        parent_pid=1,
        settings=settings,
    )
    assert p.decode_config(p.encode_config(worker)).settings == settings
