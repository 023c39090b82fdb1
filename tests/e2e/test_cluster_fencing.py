"""A node's write about a session, sent before the node lost the session's lease and
reaching PostgreSQL after the new holder wrote: refused, so the new holder's state
stands (the event cursor does not go back, nothing is applied twice)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.backends import ScratchDatabase
from tests.e2e.clusterlib import MARGIN, TTL, local, node, pinned, replaced
from tests.e2e.conftest import new_phone, pair
from tests.pgproxy import HoldingProxy
from tests.procs import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(database: ScratchDatabase) -> Iterator[HoldingProxy]:
    parts = urlsplit(database.url)
    relay = HoldingProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    yield relay
    relay.close()


def _row(database: ScratchDatabase) -> tuple[str, int]:
    with psycopg.connect(database.url) as conn:
        row = conn.execute("SELECT status, last_event_seq FROM gowa.sessions").fetchone()
    assert row is not None
    return str(row[0]), int(row[1])


def _settled(database: ScratchDatabase) -> tuple[str, int]:
    """The session's row once its cursor stayed put for a second (b is idle)."""
    rows = [_row(database)]

    def still() -> bool:
        time.sleep(1)
        rows.append(_row(database))
        return rows[-1] == rows[-2]

    wait_until(still, 20, what="b's cursor to settle")
    return rows[-1]


def test_a_write_sent_before_the_lease_was_lost_does_not_undo_the_new_holders(
    gateway_factory, sandbox, database, proxy, receiver, tmp_path
):
    # Node a reaches PostgreSQL through the relay, b directly.
    parts = urlsplit(database.url)
    netloc = parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{proxy.port}"
    relayed = urlunsplit(parts._replace(netloc=netloc, query="sslmode=disable"))

    a = node(gateway_factory, tmp_path, sandbox, relayed, receiver, "a")
    b = node(gateway_factory, tmp_path, sandbox, database.url, receiver, "b")
    x = new_phone(sandbox, "15550000941", "x")
    w = new_phone(sandbox, "15550000942", "w")
    pair(pinned(a), sandbox, "x", x)

    # a's next cursor write (for a message to x) stalls on its way; a's event loop waits
    # on it, so a renews nothing: its worker disconnects by itself and b takes x over.
    proxy.arm(b"UPDATE sessions SET last_event_seq")
    status, body = sandbox.api("POST", f"/sim/phones/{w}/send", {"to": x, "text": "stalled"})
    assert status == 200, body
    assert proxy.holding.wait(10), "a wrote no cursor"
    stalled_at = _row(database)[1]
    wait_until(
        lambda: local(b, "x")["status"] == "CONNECTED" and local(b, "x")["worker"]["pid"],
        TTL + 15,
        what="x connected on b",
    )
    status, body = sandbox.api("POST", f"/sim/phones/{w}/send", {"to": x, "text": "on b"})
    assert status == 200, body
    wait_until(lambda: _row(database)[1] > stalled_at + 1, 10, what="b's cursor past a's")
    taken = _settled(database)
    b_worker = local(b, "x")["worker"]["pid"]

    # The stalled write arrives: refused (it would set the cursor back, and b would apply
    # its events again), a stops writing, b's state stands.
    proxy.release()
    for _ in range(int(2 * MARGIN * 20)):
        status, seq = _row(database)
        assert (status, seq >= taken[1]) == ("CONNECTED", True), (status, seq, taken)
        time.sleep(0.05)
    wait_until(lambda: local(a, "x")["node"] == "b", 10, what="a answering again")
    assert local(b, "x")["worker"]["pid"] == b_worker
    assert local(a, "x")["worker"]["pid"] is None
    assert replaced(sandbox) == 0
