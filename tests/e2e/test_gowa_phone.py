"""What a sandbox phone does to its own and other sessions: it calls (GoWA's
``call.offer`` event, ``/call/reject`` and ``auto_reject_call``, the sandbox seeing the
session's ``<reject>`` arrive), sends its companion a history sync (the chats and
messages show in ``/chats`` and ``/chat/{jid}/messages``), archives and pins chats
(``/chats``) and saves contact names (``/user/my/contacts``) through app-state patches
of its own."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import is_event, new_phone, pair
from tests.procs import wait_until

pytestmark = pytest.mark.integration

ANN, CAL, DEE, GIL = "15550000511", "15550000512", "15550000513", "15550000516"


@pytest.fixture(scope="module")
def gw(sandbox, sandbox_gateway):
    new_phone(sandbox, ANN, "Ann")
    new_phone(sandbox, CAL, "Cal")
    pair(sandbox_gateway, sandbox, "ann", ANN)
    return sandbox_gateway


def call(sandbox) -> dict:
    status, offered = sandbox.api("POST", f"/sim/phones/{CAL}/call", {"to": ANN})
    assert status == 201 and offered["state"] == "offered", offered
    return offered


def rejected(sandbox, call_id: str) -> dict:
    def state():
        status, found = sandbox.api("GET", f"/sim/calls/{call_id}")
        assert status == 200, found
        return found["state"] == "rejected" and found

    return wait_until(state, 10, interval=0.05, what="the session's reject")


def test_a_call_rings_and_is_rejected_by_hand(gw, sandbox, events):
    offered = call(sandbox)
    offer = events.wait(
        is_event("call.offer", "ann", call_id=offered["call_id"]), 10, "the call rings"
    )["payload"]
    assert offer["from"] == f"{CAL}@s.whatsapp.net" and offer["from_lid"].endswith("@lid")
    assert offer["auto_rejected"] is False and offer["remote_platform"] == "android", offer
    status, _ = sandbox.api("GET", f"/sim/calls/{offered['call_id']}")
    assert status == 200
    body = {"caller_jid": offer["from"], "call_id": offer["call_id"]}
    status, answer = gw.http.post("/api/ann/call/reject", body)
    assert status == 200 and answer["code"] == "SUCCESS", answer
    assert rejected(sandbox, offered["call_id"])["rejected_by"].startswith(f"{ANN}:")


def test_auto_reject_call_rejects_without_anyone(gw, sandbox, events):
    status, body = gw.http.call(
        "PATCH", "/api/sessions/ann", {"config": {"auto_reject_call": True}}
    )
    assert status == 200, body
    offered = call(sandbox)
    offer = events.wait(
        is_event("call.offer", "ann", call_id=offered["call_id"]), 10, "the call rings"
    )["payload"]
    assert offer["auto_rejected"] is True, offer
    rejected(sandbox, offered["call_id"])
    status, missing = sandbox.api("GET", "/sim/calls/NOSUCHCALL")
    assert (status, missing["code"]) == (404, "CALL_NOT_FOUND")


def test_the_phone_sends_its_history_to_the_session(gw, sandbox):
    cal = f"{CAL}@s.whatsapp.net"
    chats = [
        {
            "jid": cal,
            "name": "Cal",
            "messages": [
                {"id": "HIST1", "from_me": False, "text": "see you at 9", "t": 1764800000},
                {"id": "HIST2", "from_me": True, "text": "deal", "t": 1764800060},
            ],
        }
    ]
    status, sent = sandbox.api("POST", f"/sim/phones/{ANN}/history", {"chats": chats})
    assert status == 200, sent

    def stored():
        status, answer = gw.http.get(f"/api/ann/chat/{cal}/messages")
        assert status == 200, answer
        return len(answer["results"]["data"]) == 2 and answer["results"]

    history = wait_until(stored, 30, interval=0.1, what="the history in the chat store")
    by_id = {m["id"]: m for m in history["data"]}
    assert by_id["HIST1"]["content"] == "see you at 9" and not by_id["HIST1"]["is_from_me"]
    assert by_id["HIST2"]["is_from_me"] and by_id["HIST2"]["content"] == "deal", by_id
    chats_listed = gw.http.get("/api/ann/chats")[1]["results"]["data"]
    [chat] = [c for c in chats_listed if c["jid"] == cal]
    assert chat["name"] == "Cal", chat
    status, bad = sandbox.api("POST", f"/sim/phones/{ANN}/history", {"chats": [{"jid": 1}]})
    assert (status, bad["code"]) == (400, "VALIDATION_ERROR"), bad


def test_a_phone_sends_its_history_when_a_companion_links(gw, sandbox):
    new_phone(sandbox, DEE, "Dee")
    cal = f"{CAL}@s.whatsapp.net"
    old = {"id": "HIST3", "from_me": False, "text": "before you linked", "t": 1764700000}
    chats = [{"jid": cal, "name": "Cal", "messages": [old]}]
    status, body = sandbox.api("PUT", f"/sim/phones/{DEE}/history", {"chats": chats})
    assert status == 200 and body["chats"] == 1, body
    pair(gw, sandbox, "dee", DEE)

    def stored():
        status, answer = gw.http.get(f"/api/dee/chat/{cal}/messages")
        assert status == 200, answer
        return answer["results"]["data"]

    [message] = wait_until(stored, 30, interval=0.1, what="the history after pairing")
    assert (message["id"], message["content"]) == ("HIST3", "before you linked"), message


def follows_the_phone(gateway, sandbox, session_id: str, phone: str) -> None:
    """The phone archives and pins a chat of its history sync; /chats follows each change."""
    eve = "15550000514@s.whatsapp.net"
    message = {"id": "HIST4", "from_me": False, "text": "hello", "t": 1764800000}
    chats = [{"jid": eve, "name": "Eve", "messages": [message]}]
    status, sent = sandbox.api("POST", f"/sim/phones/{phone}/history", {"chats": chats})
    assert status == 200, sent

    def listed(query: str = "") -> dict:
        status, answer = gateway.http.get(f"/api/{session_id}/chats{query}")
        assert status == 200, answer
        return {c["jid"]: c for c in answer["results"]["data"]}

    wait_until(lambda: eve in listed(), 30, interval=0.1, what="the chat in the chat store")
    assert not listed()[eve]["archived"] and not listed()[eve]["pinned"]
    for change, flags in [
        ({"archived": True}, (True, False)),
        ({"pinned": True}, (True, True)),
        ({"archived": False}, (False, True)),
    ]:
        status, body = sandbox.api(
            "POST", f"/sim/phones/{phone}/chat-settings", {"chat": eve, **change}
        )
        assert status == 200, body
        wait_until(
            lambda f=flags: (listed()[eve]["archived"], listed()[eve]["pinned"]) == f,
            10,
            interval=0.1,
            what=f"/chats after {change}",
        )
        assert (eve in listed("?archived=true")) is flags[0]
    status, answer = gateway.http.get(f"/api/{session_id}/chat/{eve}/messages")
    assert answer["results"]["chat_info"]["pinned"] is True, answer


def test_chats_archived_and_pinned_on_the_phone_show_in_chats(gw, sandbox):
    """The phone's app-state patches reach the session's whatsmeow, and /chats shows them."""
    follows_the_phone(gw, sandbox, "ann", ANN)


def test_chats_archived_on_the_phone_show_in_chats_with_postgresql(
    database, sandbox, gateway_factory
):
    """The same with whatsmeow's store in the session's PostgreSQL schema, which the
    worker reads on its own connection (the database outlives the gateway)."""
    gateway = gateway_factory(
        env={"GOWA_DATABASE_URL": database.url}, args=["--sandbox", sandbox.url]
    )
    new_phone(sandbox, GIL, "Gil")
    pair(gateway, sandbox, "gil", GIL)
    follows_the_phone(gateway, sandbox, "gil", GIL)


def test_names_the_phone_saves_show_in_my_contacts(gw, sandbox):
    """A contact's name saved on the phone (a critical_unblock_low patch) reaches the
    session's whatsmeow contacts, which /user/my/contacts lists."""
    fay = "15550000515@s.whatsapp.net"
    body = {"jid": fay, "full_name": "Fay Example"}
    status, saved = sandbox.api("POST", f"/sim/phones/{ANN}/contacts", body)
    assert status == 200 and saved["collection"] == "critical_unblock_low", saved

    def names() -> dict:
        status, answer = gw.http.get("/api/ann/user/my/contacts")
        assert status == 200, answer
        return {c["jid"]: c["name"] for c in answer["results"]["data"]}

    wait_until(lambda: names().get(fay) == "Fay Example", 10, interval=0.1, what="the name")
    bad = {"jid": "1@g.us", "full_name": "A group"}
    status, answer = sandbox.api("POST", f"/sim/phones/{ANN}/contacts", bad)
    assert (status, answer["code"]) == (400, "VALIDATION_ERROR"), answer
