"""The phone as a Signal endpoint: what device 0 sends a companion it links."""

from __future__ import annotations

from pathlib import Path

from tests.procs import wait_until

from .harness import pair

ALICE = "15550000001"
COLLECTIONS = {"critical_block", "critical_unblock_low", "regular_low", "regular_high", "regular"}


def _fetched(sandbox, device: int) -> set[str]:
    _, phone = sandbox.api("GET", f"/sim/phones/{ALICE}")
    return {
        name for d in phone["devices"] if d["device"] == device for name in d["app_state_fetched"]
    }


def test_new_companion_gets_the_app_state_key_and_syncs(sandbox, clients, tmp_path: Path):
    """whatsmeow only fetches app state once it holds a key the phone shared end to end."""
    status, body = sandbox.api("POST", "/sim/phones", {"phone": ALICE, "push_name": "Alice"})
    assert status == 201, body
    clients.append(pair(sandbox, ALICE, tmp_path / "alice.db"))

    wait_until(lambda: _fetched(sandbox, 1) == COLLECTIONS, timeout=15)
    _, phone = sandbox.api("GET", f"/sim/phones/{ALICE}")
    assert phone["devices"][0]["queued"] == 0
    assert not any(c.has("undecryptable") for c in clients)


def test_a_push_name_reaches_the_accounts_other_companions(sandbox, clients, tmp_path: Path):
    """A companion's app-state patch is stored, served and decrypted by the other ones.

    whatsmeow only learns its own push name from app state and refuses to send presence
    without it: a companion that can send presence after another one set the name has
    fetched that patch and verified it with the key the phone shared.
    """
    status, body = sandbox.api("POST", "/sim/phones", {"phone": ALICE, "push_name": "Alice"})
    assert status == 201, body
    first = pair(sandbox, ALICE, tmp_path / "first.db")
    second = pair(sandbox, ALICE, tmp_path / "second.db")
    clients += [first, second]
    wait_until(lambda: all(_fetched(sandbox, n) == COLLECTIONS for n in (1, 2)), timeout=15)
    second.command(cmd="presence")
    assert "PushName" in second.fresh("error")["error"]

    first.command(cmd="push_name", name="Alice's laptop")
    first.fresh("push_name_set")

    def presence_works(client) -> bool:
        client.command(cmd="presence")
        return client.fresh("presence_sent", timeout=0.5) is not None

    for client in (first, second):
        wait_until(lambda c=client: _try(presence_works, c), timeout=15)
    late = pair(sandbox, ALICE, tmp_path / "late.db")
    clients.append(late)
    wait_until(lambda: _try(presence_works, late), timeout=15)
    # Each companion confirmed the key share to the phone; the others never see that.
    for client in (first, second, late):
        receipts = [e for e in client.events if e["event"] == "receipt"]
        assert not [e for e in receipts if e["type"] in ("PEER_MSG", "SENDER")], receipts


def test_neonize_sends_our_own_patches_without_a_collection_name(sandbox, clients, tmp_path: Path):
    """Why the gateway refuses pin, archive, star and delete for me (NOT_SUPPORTED).

    neonize 0.5.2's ``send_app_state`` (its one call for an app-state patch of our own)
    sends every patch type in a collection without a name, which the sandbox refuses as
    WhatsApp does. When this fails, a neonize build names the collection: let
    ``workers/operations/appstate.py``'s operations send their patches.
    """
    status, body = sandbox.api("POST", "/sim/phones", {"phone": ALICE, "push_name": "Alice"})
    assert status == 201, body
    client = pair(sandbox, ALICE, tmp_path / "alice.db")
    clients.append(client)
    wait_until(lambda: _fetched(sandbox, 1) == COLLECTIONS, timeout=15)
    # neonize's PatchInfo.WAPatchName numbers, one for each collection.
    types = {
        "critical_block": 1,
        "critical_unblock_low": 2,
        "regular_low": 3,
        "regular_high": 4,
        "regular": 5,
    }
    for number in types.values():
        client.command(
            cmd="app_state",
            type=number,
            index=["pin_v1", "15550000002@s.whatsapp.net"],
            version=5,
            value={"timestamp": 1_700_000_000_000, "pinAction": {"pinned": True}},
        )
        error = client.fresh("error")["error"]
        assert error.startswith("SendAppStateError") and "400" in error, error
    nameless = [line for line in sandbox.log if "collection without a name" in line]
    assert len(nameless) == len(types), sandbox.log


def test_the_phone_archives_pins_and_mutes_chats_for_its_companions(
    sandbox, clients, tmp_path: Path
):
    """The phone's own patches (encrypted, MACed and LTHashed as whatsmeow does) are
    verified and applied by a companion: whatsmeow stores them as the chat's settings.
    Several in one collection, one overwriting another, keep the LTHash in step."""
    status, body = sandbox.api("POST", "/sim/phones", {"phone": ALICE, "push_name": "Alice"})
    assert status == 201, body
    client = pair(sandbox, ALICE, tmp_path / "alice.db")
    clients.append(client)
    wait_until(lambda: _fetched(sandbox, 1) == COLLECTIONS, timeout=15)
    chat = "15550000002@s.whatsapp.net"

    def settings() -> dict:
        client.command(cmd="chat_settings", jid=chat)
        return client.fresh("chat_settings")

    for change, expected in [
        ({"archived": True}, {"archived": True, "pinned": False}),
        ({"pinned": True}, {"archived": True, "pinned": True}),
        ({"archived": False}, {"archived": False, "pinned": True}),
        ({"muted": True}, {"archived": False, "pinned": True}),
    ]:
        status, body = sandbox.api(
            "POST", f"/sim/phones/{ALICE}/chat-settings", {"chat": chat, **change}
        )
        assert status == 200, body
        wait_until(
            lambda e=expected: {k: settings()[k] for k in e} == e, timeout=10, what=str(change)
        )
    assert settings()["muted_until"] != 0
    status, body = sandbox.api(
        "POST", f"/sim/phones/{ALICE}/chat-settings", {"chat": chat, "pinned": 1}
    )
    assert status == 400 and body["code"] == "VALIDATION_ERROR", body


def _try(check, client) -> bool:
    try:
        return check(client)
    except AssertionError:
        return False
