"""What a client written for GoWA sees: result shapes and events, end to end in the sandbox.

One pair of paired sessions serves every check (each pairing costs about a second);
the checks are grouped by what they need rather than one test per field.
"""

from __future__ import annotations

import io

import pytest

from tests.e2e.conftest import is_event, new_phone, pair
from tests.e2e.test_gowa_api import multipart

pytestmark = pytest.mark.integration

ANN, BEN, CAL, DEE = "15550000311", "15550000312", "15550000313", "15550000314"
NOBODY = "15550000399"
A_JID, B_JID = f"{ANN}@s.whatsapp.net", f"{BEN}@s.whatsapp.net"


@pytest.fixture(scope="module")
def gw(sandbox, sandbox_gateway):
    new_phone(sandbox, ANN, "Ann")
    new_phone(sandbox, BEN, "Ben")
    new_phone(sandbox, CAL, "Cal")
    pair(sandbox_gateway, sandbox, "ann", ANN)
    pair(sandbox_gateway, sandbox, "ben", BEN)
    return sandbox_gateway


def png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (30, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def ok(gw, method, path, body=None, **kw):
    status, answer = gw.http.call(method, path, body, **kw)
    assert status == 200, (path, status, answer)
    assert answer["code"] == "SUCCESS", answer
    return answer["results"]


def test_user_check_answers_true_or_false_never_an_error(gw):
    for asked in (BEN, f"+{BEN}", B_JID):
        assert ok(gw, "GET", f"/api/ann/user/check?phone={asked}") == {"is_on_whatsapp": True}
    assert ok(gw, "GET", f"/api/ann/user/check?phone={NOBODY}") == {"is_on_whatsapp": False}


def test_user_info_lists_devices_and_resolves_lids(gw, sandbox):
    _, ben = sandbox.api("GET", f"/sim/phones/{BEN}")
    by_phone = ok(gw, "GET", f"/api/ann/user/info?phone={BEN}")
    assert by_phone["resolved_lid"] == ben["lid"]
    [data] = by_phone["data"]
    assert data["devices"] == [
        {
            "User": BEN,
            "Agent": 0,
            "Device": "CHROME",
            "Server": "s.whatsapp.net",
            "AD": f"{BEN}.0:1@s.whatsapp.net",
        }
    ]
    assert {"name", "verified_name", "status", "picture_id"} <= data.keys()
    by_lid = ok(gw, "GET", f"/api/ann/user/info?phone={ben['lid']}")
    assert by_lid["resolved_phone"] == BEN and by_lid["data"] == by_phone["data"]


def test_privacy_settings_are_whatsmeow_strings(gw):
    privacy = ok(gw, "GET", "/api/ann/user/my/privacy")
    assert privacy == {
        "group_add": "all",
        "last_seen": "all",
        "status": "all",
        "profile": "all",
        "read_receipts": "all",
    }


def test_events_carry_phone_jids_and_lids_in_their_own_fields(gw, sandbox, events):
    _, ann = sandbox.api("GET", f"/sim/phones/{ANN}")
    _, ben = sandbox.api("GET", f"/sim/phones/{BEN}")
    sent = ok(gw, "POST", "/api/ben/send/message", {"phone": ANN, "message": "hello ann"})
    message = events.wait(is_event("message", "ann", id=sent["message_id"]), 10, "at Ann")
    assert message["payload"]["from"] == B_JID and message["payload"]["chat_id"] == B_JID
    assert message["payload"]["sender_display_name"] == "Ben"
    ok(gw, "POST", f"/api/ann/message/{sent['message_id']}/read", {"phone": BEN})
    ack = events.wait(
        is_event("message.ack", "ben", receipt_type="read"), 10, "Ann's read receipt at Ben"
    )["payload"]
    assert ack["ids"] == [sent["message_id"]]
    assert (ack["from"], ack["chat_id"]) == (A_JID, A_JID), ack
    assert ack.get("from_lid", ann["lid"]) == ann["lid"]

    ok(gw, "POST", "/api/ben/send/chat-presence", {"phone": ANN, "action": "start"})
    typing = events.wait(is_event("chat_presence", "ann"), 10, "Ben typing at Ann")["payload"]
    assert typing["from"] == B_JID and typing["chat_id"] == B_JID, typing
    assert (typing["state"], typing["media"], typing["is_group"]) == ("composing", "", False)
    assert typing.get("from_lid", ben["lid"]) == ben["lid"]
    assert typing["sender_display_name"] == "Ben"

    chats = ok(gw, "GET", "/api/ben/chats")["data"]
    assert all(not chat["jid"].endswith("@lid") for chat in chats), chats


def test_message_payloads_carry_gowas_special_fields(gw, events):
    def arrives(sent, what):
        return events.wait(is_event("message", "ben", id=sent["message_id"]), 10, what)["payload"]

    card = {"phone": BEN, "contact_name": "Dora", "contact_phone": "+15550000777"}
    contact = arrives(ok(gw, "POST", "/api/ann/send/contact", card), "contact")["contact"]
    assert contact["displayName"] == "Dora" and contact["phone_number"].endswith("15550000777")
    assert contact["vcard"].startswith("BEGIN:VCARD")

    pin = {"phone": BEN, "latitude": -6.2088, "longitude": 106.8456}
    location = arrives(ok(gw, "POST", "/api/ann/send/location", pin), "location")["location"]
    assert (location["degreesLatitude"], location["degreesLongitude"]) == (-6.2088, 106.8456)

    text = ok(gw, "POST", "/api/ann/send/message", {"phone": BEN, "message": "pass it on"})
    assert "forwarded" not in arrives(text, "text")
    forward = ok(gw, "POST", f"/api/ann/message/{text['message_id']}/forward", {"phone": BEN})
    assert arrives(forward, "forward")["forwarded"] is True

    body, headers = multipart(
        {"phone": BEN, "caption": "look"}, {"image": ("a.png", "image/png", png())}
    )
    image = arrives(ok(gw, "POST", "/api/ann/send/image", raw=body, headers=headers), "image")
    assert image["body"] == "look" and image["image"]["caption"] == "look", image
    assert image["image"]["url"].startswith("https://"), image
    body, headers = multipart({"phone": BEN}, {"file": ("r.pdf", "application/pdf", b"%PDF-1.4 x")})
    document = arrives(ok(gw, "POST", "/api/ann/send/file", raw=body, headers=headers), "file")
    assert document["document"]["filename"] == "r.pdf", document

    ok(gw, "POST", f"/api/ann/message/{text['message_id']}/revoke", {"phone": BEN})
    revoked = events.wait(
        is_event("message.revoked", "ben", revoked_message_id=text["message_id"]), 10, "revoke"
    )["payload"]
    assert revoked["revoked_from_me"] is True and revoked["from"] == A_JID


def test_group_events_and_participants(gw, events):
    created = ok(gw, "POST", "/api/ann/group", {"title": "Crew", "participants": [BEN]})
    group_id = created["group_id"]
    joined = events.wait(is_event("group.joined", "ben", chat_id=group_id), 10, "Ben joins")
    assert joined["payload"]["jids"] == [B_JID] and joined["payload"]["type"] == "join"
    assert joined["payload"]["group_name"] == "Crew"

    added = ok(
        gw, "POST", "/api/ann/group/participants", {"group_id": group_id, "participants": [CAL]}
    )
    assert added == [
        {"participant": f"{CAL}@s.whatsapp.net", "status": "success", "message": "Action success"}
    ]
    change = events.wait(
        is_event("group.participants", "ben", chat_id=group_id, type="join"), 10, "Cal added"
    )
    assert change["payload"]["jids"] == [f"{CAL}@s.whatsapp.net"], change
    for action in ("promote", "demote"):
        body = {"group_id": group_id, "participants": [BEN]}
        [result] = ok(gw, "POST", f"/api/ann/group/participants/{action}", body)
        assert result == {"participant": B_JID, "status": "success", "message": "Action success"}
        change = events.wait(
            is_event("group.participants", "ben", chat_id=group_id, type=action), 10, action
        )
        assert change["payload"]["jids"] == [B_JID], change
        listed = ok(gw, "GET", f"/api/ann/group/participants?group_id={group_id}")
        [me] = [p for p in listed["participants"] if p["jid"] == B_JID]
        assert me["is_admin"] is (action == "promote"), listed
    status, body = gw.http.post(
        "/api/ben/group/participants/promote", {"group_id": group_id, "participants": [CAL]}
    )
    assert (status, body["code"]) == (502, "WHATSAPP_ERROR"), body  # not an admin: 403
    participants = ok(gw, "GET", f"/api/ann/group/participants?group_id={group_id}")
    by_jid = {item["jid"]: item for item in participants["participants"]}
    assert set(by_jid) == {A_JID, B_JID, f"{CAL}@s.whatsapp.net"}, participants
    assert by_jid[B_JID]["phone_number"] == BEN and by_jid[B_JID]["lid"].endswith("@lid")

    removed = ok(
        gw,
        "POST",
        "/api/ann/group/participants/remove",
        {"group_id": group_id, "participants": [CAL]},
    )
    assert removed[0]["message"] == "Action success"
    change = events.wait(
        is_event("group.participants", "ben", chat_id=group_id, type="leave"), 10, "Cal removed"
    )
    assert change["payload"]["jids"] == [f"{CAL}@s.whatsapp.net"], change


def linked_devices(sandbox, phone):
    status, body = sandbox.api("GET", f"/sim/phones/{phone}")
    assert status == 200, body
    return [device["device"] for device in body["devices"]]


def test_reconnect_and_logout_name_the_device(gw, sandbox):
    assert ok(gw, "GET", "/api/ann/app/reconnect") == {"device_id": "ann"}
    gw.wait_status("ann", {"CONNECTED"}, timeout=15)
    pair(gw, sandbox, "cal", CAL)
    assert ok(gw, "GET", "/api/cal/app/logout") == {"device_id": "cal"}
    assert linked_devices(sandbox, CAL) == []


def test_deleting_a_session_logs_it_out_of_whatsapp_first(gw, sandbox, events):
    new_phone(sandbox, DEE, "Dee")
    pair(gw, sandbox, "dee", DEE)
    assert linked_devices(sandbox, DEE) == [1]
    status, body = gw.http.call("DELETE", "/devices/dee")
    assert status == 200 and body["results"] == {"device_id": "dee", "unlinked": True}, body
    assert linked_devices(sandbox, DEE) == []
    events.wait(is_event("session.deleted", "dee", unlinked=True), 5, "dee's deletion")

    status, body = gw.http.post("/api/sessions/ben/stop")
    assert status == 200, body
    gw.wait_status("ben", {"STOPPED"}, timeout=15)
    status, body = gw.http.call("DELETE", "/api/sessions/ben")
    assert status == 200 and body["results"] == {"id": "ben", "unlinked": False}, body
    assert "remove it there" in body["message"]
    assert linked_devices(sandbox, BEN) == [1]
    events.wait(is_event("session.deleted", "ben", unlinked=False), 5, "ben's deletion")
