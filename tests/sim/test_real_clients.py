"""End-to-end tests: real neonize (whatsmeow) clients against the sandbox."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .harness import NeonizeClient, SandboxProcess, pair

ALICE, BOB = "15550000001", "15550000002"


@pytest.fixture
def alice_and_bob(sandbox, clients, tmp_path: Path) -> tuple[NeonizeClient, NeonizeClient]:
    """Two phones with one paired, connected companion each."""
    _phones(sandbox, ALICE, BOB)
    alice = pair(sandbox, ALICE, tmp_path / "alice.db")
    bob = pair(sandbox, BOB, tmp_path / "bob.db")
    clients += [alice, bob]
    return alice, bob


def _phones(sim: SandboxProcess, *numbers: str) -> None:
    for number in numbers:
        status, body = sim.api("POST", "/sim/phones", {"phone": number, "push_name": number})
        assert status == 201, body


def test_pair_connect_and_reconnect_with_new_process(sandbox, clients, tmp_path: Path):
    _phones(sandbox, ALICE)
    start = time.monotonic()
    alice = pair(sandbox, ALICE, tmp_path / "alice.db")
    clients.append(alice)
    assert time.monotonic() - start < 10
    connected = alice.wait("connected")
    assert connected["jid"] == f"{ALICE}:1@s.whatsapp.net"
    assert connected["lid"].endswith(":1@lid")
    status, phone = sandbox.api("GET", f"/sim/phones/{ALICE}")
    assert status == 200
    assert phone["devices"][0]["connected"] is True
    alice.stop()

    again = NeonizeClient(sandbox, tmp_path / "alice.db")
    clients.append(again)
    assert again.wait("connected")["jid"] == connected["jid"]
    assert not again.has("qr")


def test_message_delivery_and_read_receipts(alice_and_bob):
    alice, bob = alice_and_bob
    alice.command(cmd="send", to=BOB, text="hello bob")
    sent = alice.wait("sent")
    message = bob.wait("message", id=sent["id"])
    assert message["text"] == "hello bob"
    assert message["sender_alt"] == f"{ALICE}:1@s.whatsapp.net"
    assert message["push_name"] == ALICE
    delivered = alice.wait("receipt", type="INACTIVE")
    assert delivered["ids"] == [sent["id"]]
    bob.command(cmd="mark_read", id=sent["id"])
    read = alice.wait("receipt", type="READ")
    assert read["ids"] == [sent["id"]]

    bob.command(cmd="send", to=ALICE, text="hi alice")
    reply = alice.wait("message", text="hi alice")
    assert reply["from_me"] is False


def test_offline_queue_delivers_on_next_login(sandbox, clients, alice_and_bob, tmp_path: Path):
    alice, bob = alice_and_bob
    bob.stop()
    alice.command(cmd="send", to=BOB, text="while you were away")
    sent = alice.wait("sent")
    bob = NeonizeClient(sandbox, tmp_path / "bob.db")
    clients.append(bob)
    assert bob.wait("message", id=sent["id"])["text"] == "while you were away"
    assert bob.wait("offline_sync")["count"] == 1
    alice.wait("receipt", type="INACTIVE")


def test_sandbox_restart_keeps_pairing(sandbox, alice_and_bob):
    alice, bob = alice_and_bob
    sandbox.stop()
    alice.wait("disconnected")
    sandbox.start()
    alice.fresh("connected")
    bob.fresh("connected")
    alice.command(cmd="send", to=BOB, text="after restart")
    assert bob.wait("message", text="after restart")


def test_drop_connections_reconnects(sandbox, clients, tmp_path: Path):
    _phones(sandbox, ALICE)
    alice = pair(sandbox, ALICE, tmp_path / "alice.db")
    clients.append(alice)
    status, faults = sandbox.api("POST", "/sim/faults", {"drop_connections": True})
    assert status == 200 and faults["dropped"] == 1
    alice.wait("disconnected")
    alice.fresh("connected")


def test_unlink_logs_the_companion_out(sandbox, clients, tmp_path: Path):
    _phones(sandbox, ALICE)
    alice = pair(sandbox, ALICE, tmp_path / "alice.db")
    clients.append(alice)
    status, body = sandbox.api("POST", f"/sim/phones/{ALICE}/unlink", {"device": 1})
    assert status == 200, body
    alice.wait("logged_out")
    status, phone = sandbox.api("GET", f"/sim/phones/{ALICE}")
    assert phone["devices"] == []


def test_unlink_while_offline_logs_out_at_next_login(sandbox, clients, tmp_path: Path):
    _phones(sandbox, ALICE)
    alice = pair(sandbox, ALICE, tmp_path / "alice.db")
    clients.append(alice)
    alice.stop()
    status, body = sandbox.api("POST", f"/sim/phones/{ALICE}/unlink", {"device": 1})
    assert status == 200, body
    again = NeonizeClient(sandbox, tmp_path / "alice.db")
    clients.append(again)
    again.wait("logged_out")


def test_handshake_fails_without_root_key_patch(sandbox, clients, tmp_path: Path):
    client = NeonizeClient(sandbox, tmp_path / "nopatch.db", patch=False)
    clients.append(client)
    error = client.wait("connect_error")["error"]
    assert "cert" in error


def test_simulated_contact_sends_to_a_session(sandbox, clients, tmp_path: Path):
    _phones(sandbox, ALICE, BOB)
    alice = pair(sandbox, ALICE, tmp_path / "alice.db")
    clients.append(alice)
    status, sent = sandbox.api("POST", f"/sim/phones/{BOB}/send", {"to": ALICE, "text": "hey"})
    assert status == 200, sent
    message = alice.wait("message", id=sent["id"])
    assert message["text"] == "hey"
    assert message["sender_alt"].startswith(BOB)
    status, again = sandbox.api("POST", f"/sim/phones/{BOB}/send", {"to": ALICE, "text": "2nd"})
    assert status == 200, again
    assert alice.wait("message", id=again["id"])["text"] == "2nd"


def test_typing_and_presence_reach_the_peer(sandbox, alice_and_bob):
    alice, bob = alice_and_bob
    # whatsmeow only sends <presence> once the phone has synced the push name (app state),
    # which the sandbox does not do; subscriptions still get the current state.
    bob.command(cmd="subscribe", to=ALICE)
    presence = bob.wait("presence")
    assert presence["unavailable"] is True and presence["jid"].startswith(ALICE)
    alice.command(cmd="typing", to=BOB)
    typing = bob.wait("chat_presence")
    assert typing["state"] == "COMPOSING" and typing["chat"].startswith(ALICE)


def test_group_create_and_message_fan_out(sandbox, clients, tmp_path: Path):
    carol = "15550000003"
    _phones(sandbox, ALICE, BOB, carol)
    alice = pair(sandbox, ALICE, tmp_path / "alice.db")
    bob = pair(sandbox, BOB, tmp_path / "bob.db")
    carol_client = pair(sandbox, carol, tmp_path / "carol.db")
    clients += [alice, bob, carol_client]
    alice.command(cmd="create_group", name="sandbox team", participants=[BOB])
    group = alice.wait("group_created")
    assert group["name"] == "sandbox team" and group["jid"].endswith("@g.us")
    assert bob.wait("joined_group")["jid"] == group["jid"]

    alice.command(cmd="send", to=group["jid"], text="hello group")
    sent = alice.wait("sent")
    # whatsmeow emits one Message per <enc>: first the sender-key distribution, then the text.
    message = bob.wait("message", id=sent["id"], text="hello group")
    assert message["is_group"] is True and message["chat"] == group["jid"]

    alice.command(cmd="group_add", group=group["jid"], phone=carol)
    alice.wait("group_added")
    assert len(bob.wait("group_info", jid=group["jid"])["join"]) == 1
    bob.command(cmd="send", to=group["jid"], text="welcome carol")
    sent = bob.wait("sent")
    assert carol_client.wait("message", id=sent["id"], text="welcome carol")
    assert alice.wait("message", id=sent["id"], text="welcome carol")


def test_newly_linked_device_gets_messages(sandbox, clients, alice_and_bob, tmp_path: Path):
    alice, bob = alice_and_bob
    alice.command(cmd="send", to=BOB, text="first")
    bob.wait("message", text="first")
    bob_laptop = pair(sandbox, BOB, tmp_path / "bob-laptop.db")
    clients.append(bob_laptop)
    assert bob_laptop.wait("connected")["jid"] == f"{BOB}:2@s.whatsapp.net"
    alice.command(cmd="send", to=BOB, text="second")
    assert bob_laptop.wait("message", text="second")["sender_alt"].startswith(ALICE)
    assert bob.wait("message", text="second")


def test_delay_fault_slows_but_keeps_order(sandbox, alice_and_bob):
    alice, bob = alice_and_bob
    status, faults = sandbox.api("POST", "/sim/faults", {"delay_ms": 300})
    assert status == 200 and faults["delay_ms"] == 300
    start = time.monotonic()
    alice.command(cmd="send", to=BOB, text="slow")
    bob.wait("message", text="slow")
    assert time.monotonic() - start >= 0.3
    sandbox.api("POST", "/sim/faults", {})
    alice.command(cmd="send", to=BOB, text="fast again")
    bob.wait("message", text="fast again")


def test_pairing_code_login(sandbox, clients, tmp_path: Path):
    _phones(sandbox, ALICE)
    alice = NeonizeClient(sandbox, tmp_path / "alice.db")
    clients.append(alice)
    alice.wait("qr")
    alice.command(cmd="pair_phone", phone=ALICE)
    code = alice.wait("pair_code")["code"]
    status, body = sandbox.api("POST", f"/sim/phones/{ALICE}/pair-code", {"code": "ZZZZ-ZZZZ"})
    assert status == 400 and body["code"] == "WRONG_CODE"
    alice.command(cmd="pair_phone", phone=ALICE)
    code = alice.fresh("pair_code")["code"]
    status, body = sandbox.api("POST", f"/sim/phones/{ALICE}/pair-code", {"code": code})
    assert status == 200, body
    assert alice.wait("connected")["jid"] == body["jid"] == f"{ALICE}:1@s.whatsapp.net"
