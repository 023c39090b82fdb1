"""GoWA operations end to end: real gateway, real workers (neonize), real sandbox network.

Two sessions talk to each other; every assertion goes through the public API (the
operation routes, the chat storage routes, the live event stream).
"""

from __future__ import annotations

import io
import json
import shutil
import uuid

import pytest

from tests.e2e.conftest import is_event, new_phone, pair
from tests.procs import wait_until

pytestmark = pytest.mark.integration

ALICE, BOB, CAROL = "15550000211", "15550000212", "15550000213"
A_JID, B_JID = f"{ALICE}@s.whatsapp.net", f"{BOB}@s.whatsapp.net"


@pytest.fixture(scope="module")
def gw(sandbox, sandbox_gateway):
    new_phone(sandbox, ALICE, "Alice")
    new_phone(sandbox, BOB, "Bob")
    new_phone(sandbox, CAROL, "Carol")
    pair(sandbox_gateway, sandbox, "alice", ALICE)
    pair(sandbox_gateway, sandbox, "bob", BOB)
    return sandbox_gateway


def ok(gw, method, path, body=None, **kw):
    status, answer = gw.http.call(method, path, body, **kw)
    assert status == 200, (path, status, answer)
    assert answer["code"] == "SUCCESS", answer
    return answer["results"]


def messages(gw, session, chat, **query):
    args = "&".join(f"{k}={v}" for k, v in query.items())
    return ok(gw, "GET", f"/api/{session}/chat/{chat}/messages?{args}")


def stored(gw, session, chat, message_id):
    for item in messages(gw, session, chat, limit=100)["data"]:
        if item["id"] == message_id:
            return item
    return None


def multipart(fields, files):
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(f"{value}\r\n".encode())
    for name, (filename, content_type, data) in files.items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_text_is_stored_on_both_sides_and_status_follows_receipts(gw, events):
    sent = ok(gw, "POST", "/api/alice/send/message", {"phone": BOB, "message": "hi bob"})
    message_id = sent["message_id"]
    assert f"sent to {BOB}" in sent["status"]
    events.wait(is_event("message", "bob", id=message_id), 10, "Bob's message event")

    chats = ok(gw, "GET", "/api/bob/chats")
    assert chats["pagination"]["total"] >= 1
    chat = next(item for item in chats["data"] if item["jid"] == A_JID)
    assert chat["name"] == "Alice" and chat["last_message_time"]

    theirs = stored(gw, "bob", ALICE, message_id)
    assert theirs["content"] == "hi bob"
    assert theirs["is_from_me"] is False and theirs["sender_jid"] == A_JID
    ours = wait_until(
        lambda: (m := stored(gw, "alice", BOB, message_id)) and m["status"] == "delivered" and m,
        10,
        what="delivered status in Alice's storage",
    )
    assert ours["is_from_me"] is True and ours["content"] == "hi bob"

    ok(gw, "POST", f"/api/bob/message/{message_id}/read", {"phone": ALICE})
    wait_until(
        lambda: stored(gw, "alice", BOB, message_id)["status"] == "read",
        10,
        what="read status in Alice's storage",
    )
    mine = messages(gw, "alice", BOB, is_from_me="true")["data"]
    assert mine and all(item["is_from_me"] for item in mine)
    found = messages(gw, "bob", ALICE, search="hi%20bob")["data"]
    assert [item["id"] for item in found] == [message_id]
    assert messages(gw, "bob", ALICE)["chat_info"]["jid"] == A_JID


def test_reply_reaction_edit_revoke(gw, events):
    first = ok(gw, "POST", "/api/alice/send/message", {"phone": BOB, "message": "original"})
    message_id = first["message_id"]
    events.wait(is_event("message", "bob", id=message_id), 10, "Bob gets the original")

    reply = ok(
        gw,
        "POST",
        "/api/bob/send/message",
        {"phone": ALICE, "message": "a reply", "reply_message_id": message_id},
    )
    got = events.wait(
        is_event("message", "alice", id=reply["message_id"]), 10, "Alice gets the reply"
    )
    assert got["payload"]["replied_to_id"] == message_id
    assert got["payload"]["quoted_body"] == "original"

    ok(gw, "POST", f"/api/bob/message/{message_id}/reaction", {"phone": ALICE, "emoji": "👍"})
    events.wait(
        is_event("message.reaction", "alice", reacted_message_id=message_id),
        10,
        "reaction at Alice",
    )
    reactions = wait_until(
        lambda: stored(gw, "alice", BOB, message_id)["reactions"], 10, what="stored reaction"
    )
    assert reactions[0]["emoji"] == "👍" and reactions[0]["sender_jid"] == B_JID
    assert stored(gw, "bob", ALICE, message_id)["reactions"][0]["emoji"] == "👍"

    ok(gw, "POST", f"/api/alice/message/{message_id}/update", {"phone": BOB, "message": "edited"})
    events.wait(
        is_event("message.edited", "bob", original_message_id=message_id), 10, "edit at Bob"
    )
    edited = wait_until(
        lambda: (m := stored(gw, "bob", ALICE, message_id))["content"] == "edited" and m,
        10,
        what="edited content in Bob's storage",
    )
    assert edited["is_edited"] is True

    ok(gw, "POST", f"/api/alice/message/{message_id}/revoke", {"phone": BOB})
    events.wait(
        is_event("message.revoked", "bob", revoked_message_id=message_id), 10, "revoke at Bob"
    )
    revoked = wait_until(
        lambda: (m := stored(gw, "bob", ALICE, message_id))["is_revoked"] and m,
        10,
        what="revoked in Bob's storage",
    )
    assert revoked["content"] == ""
    assert stored(gw, "alice", BOB, message_id)["is_revoked"] is True


def test_contact_location_link_poll_forward(gw, events):
    cases = [
        ("/send/contact", {"contact_name": "Carol", "contact_phone": CAROL}, "Carol"),
        ("/send/location", {"latitude": "-6.2", "longitude": "106.8"}, "-6.2,106.8"),
        (
            "/send/link",
            {"link": "https://example.org/x", "caption": "see"},
            "see\nhttps://example.org/x",
        ),
        ("/send/poll", {"question": "Lunch?", "options": ["yes", "no"], "max_answer": 1}, "Lunch?"),
    ]
    for path, body, content in cases:
        sent = ok(gw, "POST", f"/api/alice{path}", {"phone": BOB, **body})
        events.wait(is_event("message", "bob", id=sent["message_id"]), 10, f"{path} at Bob")
        assert stored(gw, "bob", ALICE, sent["message_id"])["content"] == content, path
    text = ok(gw, "POST", "/api/alice/send/message", {"phone": BOB, "message": "pass it on"})
    forwarded = ok(gw, "POST", f"/api/alice/message/{text['message_id']}/forward", {"phone": BOB})
    events.wait(is_event("message", "bob", id=forwarded["message_id"]), 10, "forward at Bob")
    assert stored(gw, "bob", ALICE, forwarded["message_id"])["content"] == "pass it on"


def test_chat_presence_and_privacy(gw, events):
    ok(gw, "POST", "/api/alice/send/chat-presence", {"phone": BOB, "action": "start"})
    privacy = ok(gw, "GET", "/api/alice/user/my/privacy")
    assert set(privacy) == {"group_add", "last_seen", "status", "profile", "read_receipts"}


def test_groups(gw, events):
    created = ok(gw, "POST", "/api/alice/group", {"title": "Team", "participants": [BOB]})
    group_id = created["group_id"]
    assert group_id.endswith("@g.us")
    info = ok(gw, "GET", f"/api/alice/group/info?group_id={group_id}")
    assert info["Name"] == "Team" and info["ParticipantCount"] == 2
    participants = ok(gw, "GET", f"/api/alice/group/participants?group_id={group_id}")
    assert participants["group_id"] == group_id and len(participants["participants"]) == 2
    status, csv = gw.http.get(f"/api/alice/group/participants/export?group_id={group_id}")
    assert status == 200 and csv.startswith(b"participant_jid,phone_number,lid,display_name,role")

    sent = ok(gw, "POST", "/api/alice/send/message", {"phone": group_id, "message": "hello team"})
    events.wait(is_event("message", "bob", id=sent["message_id"]), 15, "group message at Bob")
    assert stored(gw, "bob", group_id, sent["message_id"])["content"] == "hello team"


@pytest.mark.parametrize(
    "phone",
    ["a@b@c", f"x:99@{A_JID.split('@')[1]}", "\u0661\u0665\u0665\u0660\u0660\u0660\u0661", "bob"],
)
def test_malformed_recipients_are_400_not_502(gw, phone):
    """Checked at the gateway, named by field; whatsmeow used to refuse them with a 502."""
    status, answer = gw.http.post("/api/alice/send/message", {"phone": phone, "message": "x"})
    assert (status, answer["code"]) == (400, "VALIDATION_ERROR"), answer
    assert "$.phone" in answer["message"] and "regex" not in answer["message"]
    group = {"group_id": "1@g.us", "participants": [phone]}
    status, answer = gw.http.post("/api/alice/group/participants", group)
    assert (status, answer["code"]) == (400, "VALIDATION_ERROR"), answer


@pytest.mark.parametrize("field", ["image", "sticker"])
def test_non_pictures_sent_as_pictures_are_400(gw, field):
    body, headers = multipart(
        {"phone": BOB}, {field: ("a.png", "image/png", b"%PDF-1.7 not a png")}
    )
    status, answer = gw.http.post(f"/api/alice/send/{field}", raw=body, headers=headers)
    assert (status, answer["code"]) == (400, "VALIDATION_ERROR"), answer
    assert "not a picture" in answer["message"]


def test_media_and_unsupported_operations_fail_cleanly(gw):
    """Missing or oversize media and operations the sandbox lacks: clean 4xx, never 500
    (media that is sent is proven in test_media.py)."""
    body, headers = multipart({"phone": BOB}, {})
    status, answer = gw.http.post("/api/alice/send/image", raw=body, headers=headers)
    assert status == 400 and "image" in answer["message"], answer

    big = b"\0" * ((50 << 20) + 1)  # GoWA's file size, max_file_mb
    body, headers = multipart(
        {"phone": BOB}, {"file": ("big.bin", "application/octet-stream", big)}
    )
    status, answer = gw.http.post("/api/alice/send/file", raw=body, headers=headers)
    assert status == 413 and answer["code"] == "PAYLOAD_TOO_LARGE", answer

    if shutil.which("ffmpeg") is None:
        body, headers = multipart({"phone": BOB}, {"video": ("v.mp4", "video/mp4", b"fake")})
        status, answer = gw.http.post("/api/alice/send/video", raw=body, headers=headers)
        assert status == 422 and answer["code"] == "FFMPEG_NOT_AVAILABLE", answer

    status, answer = gw.http.get(f"/api/alice/user/business-profile?phone={BOB}")
    assert status == 422 and answer["code"] == "NOT_SUPPORTED", answer
    status, answer = gw.http.post("/api/alice/message/NOPE/star", {"phone": BOB})
    assert status == 404 and answer["code"] == "NOT_FOUND", answer
    status, answer = gw.http.post(f"/api/alice/chat/{BOB}@s.whatsapp.net/pin", {"pinned": True})
    assert status == 422 and answer["code"] == "NOT_SUPPORTED", answer
    assert "neonize 0.5.2" in answer["message"] and "collection name" in answer["message"]
    status, answer = gw.http.post("/api/alice/send/message", {"phone": BOB})
    assert status == 400 and "`message`" in answer["message"], answer


def test_unprefixed_routes_and_settings_push(gw, events):
    sent = ok(
        gw,
        "POST",
        "/send/message",
        {"phone": ALICE, "message": "via header"},
        headers={"X-Device-Id": "bob"},
    )
    events.wait(is_event("message", "alice", id=sent["message_id"]), 10, "unprefixed send")
    chats = ok(gw, "GET", "/chats?device_id=alice&search=1555")
    assert any(item["jid"] == B_JID for item in chats["data"])

    status, body = gw.http.call(
        "PATCH", "/api/sessions/bob", {"config": {"auto_reply": "Bob is away"}}
    )
    assert status == 200 and body["results"]["config"]["auto_reply"] == "Bob is away", body
    assert gw.session("bob")["status"] == "CONNECTED"  # pushed live, no restart
    ok(gw, "POST", "/api/alice/send/message", {"phone": BOB, "message": "are you there?"})
    events.wait(
        lambda e: is_event("message", "alice")(e) and e["payload"].get("body") == "Bob is away",
        10,
        "auto-reply at Alice",
    )
    status, body = gw.http.call("PATCH", "/api/sessions/bob", {"config": {"auto_reply": None}})
    assert status == 200, body


def test_openapi_and_docs(gw):
    status, spec = gw.http.get("/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.")
    assert "/api/{session_id}/send/image" in spec["paths"]
    form = spec["paths"]["/send/image"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert form["schema"]["properties"]["image"] == {"type": "string", "format": "binary"}
    status, page = gw.http.get("/docs")
    assert status == 200 and b"swagger-ui-bundle.js" in page
    status, asset = gw.http.get("/docs/assets/swagger-ui-bundle.js")
    assert status == 200 and len(asset) > 100_000
    json.dumps(spec)
