"""Group administration and newsletters through GoWA's routes, end to end in the sandbox.

Ann (admin) runs one group; Ben, a second paired session, observes every change the
way a member's client does: through the ``group.*`` events and through his own group
info, served by the sandbox from what Ann's whatsmeow sent. One group and one pair of
sessions carry every operation (pairing costs about a second each).
"""

from __future__ import annotations

import base64
import io

import pytest

from tests.e2e.conftest import is_event, new_phone, pair
from tests.e2e.test_gowa_api import multipart
from tests.procs import wait_until

pytestmark = pytest.mark.integration

ANN, BEN = "15550000411", "15550000412"
A_JID, B_JID = f"{ANN}@s.whatsapp.net", f"{BEN}@s.whatsapp.net"


@pytest.fixture(scope="module")
def gw(sandbox, sandbox_gateway):
    new_phone(sandbox, ANN, "Ann")
    new_phone(sandbox, BEN, "Ben")
    pair(sandbox_gateway, sandbox, "ann", ANN)
    pair(sandbox_gateway, sandbox, "ben", BEN)
    return sandbox_gateway


@pytest.fixture(scope="module")
def group(gw):
    created = ok(gw, "POST", "/api/ann/group", {"title": "Crew", "participants": [BEN]})
    return created["group_id"]


def ok(gw, method, path, body=None, **kw):
    status, answer = gw.http.call(method, path, body, **kw)
    assert status == 200, (path, status, answer)
    assert answer["code"] == "SUCCESS", answer
    return answer["results"]


def refused(gw, method, path, body=None) -> dict:
    status, answer = gw.http.call(method, path, body)
    assert 400 <= status < 600 and status != 500, (path, status, answer)
    assert set(answer) >= {"code", "message"}, answer
    return answer


def png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGBA", (900, 300), (30, 200, 30, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buffer, format="JPEG")
    return buffer.getvalue()


def my_groups(gw, session: str) -> list[str]:
    return [g["JID"] for g in ok(gw, "GET", f"/api/{session}/user/my/groups")["data"]]


def info(gw, session: str, group: str) -> dict:
    return ok(gw, "GET", f"/api/{session}/group/info?group_id={group}")


def test_settings_reach_the_other_member(gw, group, events):
    ok(gw, "POST", "/api/ann/group/name", {"group_id": group, "name": "Crew 2"})
    ok(gw, "POST", "/api/ann/group/topic", {"group_id": group, "topic": "Tuesday 9:00"})
    seen = info(gw, "ben", group)
    assert (seen["Name"], seen["Topic"]) == ("Crew 2", "Tuesday 9:00"), seen
    assert seen["NameSetBy"].endswith("@lid") and seen["TopicID"], seen
    assert not seen["IsLocked"] and not seen["IsAnnounce"]
    ok(gw, "POST", "/api/ann/group/topic", {"group_id": group, "topic": ""})
    assert info(gw, "ben", group)["Topic"] == ""

    # A member who is not an admin changes what is not locked, never the settings.
    ok(gw, "POST", "/api/ben/group/name", {"group_id": group, "name": "Ben's crew"})
    assert info(gw, "ann", group)["Name"] == "Ben's crew"
    assert refused(gw, "POST", "/api/ben/group/locked", {"group_id": group, "locked": True})
    ok(gw, "POST", "/api/ann/group/locked", {"group_id": group, "locked": True})
    assert info(gw, "ben", group)["IsLocked"] is True
    refused(gw, "POST", "/api/ben/group/name", {"group_id": group, "name": "Mine"})
    refused(gw, "POST", "/api/ben/group/topic", {"group_id": group, "topic": "Mine"})
    assert info(gw, "ann", group)["Name"] == "Ben's crew"
    ok(gw, "POST", "/api/ann/group/locked", {"group_id": group, "locked": False})
    assert info(gw, "ben", group)["IsLocked"] is False

    ok(gw, "POST", "/api/ann/group/announce", {"group_id": group, "announce": True})
    assert info(gw, "ben", group)["IsAnnounce"] is True
    refused(gw, "POST", "/api/ben/send/message", {"phone": group, "message": "hi all"})
    sent = ok(gw, "POST", "/api/ann/send/message", {"phone": group, "message": "admins only"})
    events.wait(is_event("message", "ben", id=sent["message_id"]), 10, "Ben reads the announcement")
    ok(gw, "POST", "/api/ann/group/announce", {"group_id": group, "announce": False})
    assert info(gw, "ben", group)["IsAnnounce"] is False
    ok(gw, "POST", "/api/ben/send/message", {"phone": group, "message": "hi all"})


def test_group_photo_and_profile_pictures(gw, sandbox, group):
    # A PNG, as GoWA clients send: WhatsApp (and the sandbox) take only JPEGs.
    body, headers = multipart({"group_id": group}, {"photo": ("crew.png", "image/png", png())})
    set_photo = ok(gw, "POST", "/api/ann/group/photo", raw=body, headers=headers)
    seen = ok(gw, "GET", f"/api/ben/user/avatar?phone={group}")
    assert seen["id"] == set_photo["picture_id"] and seen["url"].startswith("https://pps.")
    body, headers = multipart({"group_id": group}, {})
    status, answer = gw.http.post("/api/ann/group/photo", raw=body, headers=headers)
    assert answer["code"] == "NOT_SUPPORTED" and 400 <= status < 500, answer  # neonize cannot
    assert ok(gw, "GET", f"/api/ben/user/avatar?phone={group}")["id"] == seen["id"]
    refused(gw, "GET", f"/api/ben/user/avatar?phone={BEN}")  # no picture set

    body, headers = multipart({}, {"avatar": ("me.png", "image/png", png())})
    ok(gw, "POST", "/api/ann/user/avatar", raw=body, headers=headers)
    assert ok(gw, "GET", f"/api/ben/user/avatar?phone={ANN}")["id"]

    # The phone's own picture, set in the app, is what another session learns.
    data = base64.b64encode(jpeg((30, 30, 200))).decode()
    status, phone = sandbox.api("PUT", f"/sim/phones/{ANN}/picture", {"data": data})
    assert status == 200, phone
    avatar = ok(gw, "GET", f"/api/ben/user/avatar?phone={ANN}")
    assert avatar["id"] == phone["picture_id"], avatar
    [user] = ok(gw, "GET", f"/api/ben/user/info?phone={ANN}")["data"]
    assert user["picture_id"] == phone["picture_id"], user


def test_invite_links_leave_and_join(gw, sandbox, group, events):
    refused(gw, "GET", f"/api/ben/group/invite-link?group_id={group}")  # not an admin
    link = ok(gw, "GET", f"/api/ann/group/invite-link?group_id={group}")["invite_link"]
    assert link.startswith("https://chat.whatsapp.com/")
    assert ok(gw, "GET", f"/api/ann/group/invite-link?group_id={group}")["invite_link"] == link
    preview = ok(gw, "GET", f"/api/ben/group/info-from-link?link={link}")
    assert preview["group_id"] == group and preview["participant_count"] == 2, preview

    ok(gw, "POST", "/api/ben/group/leave", {"group_id": group})
    left = events.wait(
        is_event("group.participants", "ann", chat_id=group, type="leave"), 10, "Ben leaves"
    )
    assert left["payload"]["jids"] == [B_JID], left
    assert group not in my_groups(gw, "ben") and group in my_groups(gw, "ann")

    assert ok(gw, "POST", "/api/ben/group/join-with-link", {"link": link}) == {"group_id": group}
    joined = events.wait(
        is_event("group.joined", "ben", chat_id=group, reason="invite"), 10, "Ben rejoins"
    )
    assert joined["payload"]["jids"] == [B_JID], joined
    events.wait(
        is_event("group.participants", "ann", chat_id=group, type="join"), 10, "Ann sees it"
    )
    assert group in my_groups(gw, "ben")

    fresh = ok(gw, "GET", f"/api/ann/group/invite-link?group_id={group}&reset=true")
    assert fresh["invite_link"] != link
    refused(gw, "GET", f"/api/ben/group/info-from-link?link={link}")  # revoked
    refused(gw, "POST", "/api/ben/group/join-with-link", {"link": link})


def test_join_requests_wait_for_an_admin(gw, sandbox, group):
    link = ok(gw, "GET", f"/api/ann/group/invite-link?group_id={group}")["invite_link"]
    gid = group.split("@")[0]
    status, body = sandbox.api("POST", f"/sim/groups/{gid}/approval", {"required": True})
    assert status == 200, body
    ok(gw, "POST", "/api/ben/group/leave", {"group_id": group})
    assert ok(gw, "POST", "/api/ben/group/join-with-link", {"link": link}) == {"group_id": group}
    assert group not in my_groups(gw, "ben")
    [request] = ok(gw, "GET", f"/api/ann/group/participant-requests?group_id={group}")
    assert request["jid"] == B_JID and request["phone_number"] == BEN, request
    refused(gw, "GET", f"/api/ben/group/participant-requests?group_id={group}")
    for action in ("approve", "reject"):
        body = {"group_id": group, "participants": [BEN]}
        answer = refused(gw, "POST", f"/api/ann/group/participant-requests/{action}", body)
        assert answer["code"] == "NOT_SUPPORTED", answer


def test_newsletters_list_post_read_and_unfollow(gw, sandbox, events):
    status, made = sandbox.api(
        "POST", "/sim/newsletters", {"owner": ANN, "name": "Crew news", "description": "weekly"}
    )
    assert status == 201, made
    channel = made["jid"]
    nid = channel.split("@")[0]
    status, body = sandbox.api("POST", f"/sim/newsletters/{nid}/followers", {"phone": BEN})
    assert status == 200, body
    joined = events.wait(
        is_event("newsletter.joined", "ben", newsletter_id=channel), 10, "Ben follows"
    )["payload"]
    assert (joined["name"], joined["description"]) == ("Crew news", "weekly"), joined

    [mine] = ok(gw, "GET", "/api/ann/user/my/newsletters")["data"]
    assert mine["id"] == channel and mine["viewer_metadata"]["role"] == "owner", mine
    assert mine["thread_metadata"]["subscribers_count"] == "2", mine
    [followed] = ok(gw, "GET", "/api/ben/user/my/newsletters")["data"]
    assert followed["viewer_metadata"]["role"] == "subscriber", followed

    sent = ok(gw, "POST", "/api/ann/send/message", {"phone": channel, "message": "issue 1"})
    refused(gw, "POST", "/api/ben/send/message", {"phone": channel, "message": "me too"})
    [post] = ok(gw, "GET", f"/api/ben/newsletter/messages?newsletter_id={channel}")["data"]
    assert (post["text"], post["type"], post["server_id"]) == ("issue 1", "text", 100), post
    live = events.wait(is_event("message", "ben", id=sent["message_id"]), 10, "the post arrives")
    assert live["payload"]["chat_id"] == channel, live
    wait_until(  # the post was acked: nothing is held for a redelivery
        lambda: (
            [d["queued"] for d in sandbox.api("GET", f"/sim/phones/{BEN}")[1]["devices"]] == [0]
        ),
        10,
        what="Ben's ack of the post",
    )

    ok(gw, "POST", "/api/ben/newsletter/unfollow", {"newsletter_id": channel})
    events.wait(is_event("newsletter.left", "ben", newsletter_id=channel), 10, "Ben unfollows")
    assert ok(gw, "GET", "/api/ben/user/my/newsletters")["data"] == []
    missing = refused(gw, "GET", "/api/ben/newsletter/messages?newsletter_id=120363000000000000")
    assert missing["code"] == "WHATSAPP_ERROR", missing
