"""The phone as a Signal endpoint: what device 0 sends a companion it links."""

from __future__ import annotations

from pathlib import Path

from tests.procs import wait_until

from .harness import pair

ALICE = "15550000001"
COLLECTIONS = {"critical_block", "critical_unblock_low", "regular_low", "regular_high", "regular"}


def test_new_companion_gets_the_app_state_key_and_syncs(sandbox, clients, tmp_path: Path):
    """whatsmeow only fetches app state once it holds a key the phone shared end to end."""
    status, body = sandbox.api("POST", "/sim/phones", {"phone": ALICE, "push_name": "Alice"})
    assert status == 201, body
    clients.append(pair(sandbox, ALICE, tmp_path / "alice.db"))

    def fetched() -> set[str]:
        _, phone = sandbox.api("GET", f"/sim/phones/{ALICE}")
        return set(phone["devices"][0]["app_state_fetched"])

    wait_until(lambda: fetched() == COLLECTIONS, timeout=15)
    _, phone = sandbox.api("GET", f"/sim/phones/{ALICE}")
    assert phone["devices"][0]["queued"] == 0
    assert not any(c.has("undecryptable") for c in clients)
