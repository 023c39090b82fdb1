"""Moving a paired session between two real gateways with the ``gowa`` CLI: it connects at
the new one without a QR code, keeps its history, sends and receives with the keys it
brought, and the sandbox never sees its device logged in twice."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.e2e.conftest import SUBPROCESS_WORKERS, new_phone, pair
from tests.procs import GOWA, ROOT, Gateway, wait_until

pytestmark = pytest.mark.integration

MOVER, PEER = "15550007101", "15550007102"
PG_MOVER, PG_PEER = "15550007103", "15550007104"


def _cli(gateway: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GOWA, "session", "--url", gateway.http.base, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def _send(gateway: Gateway, session_id: str, phone: str, text: str) -> str:
    status, body = gateway.http.post(
        f"/api/{session_id}/send/message", {"phone": phone, "message": text}
    )
    assert status == 200, body
    return body["results"]["message_id"]


def _history(gateway: Gateway, session_id: str, phone: str) -> dict[str, str]:
    status, body = gateway.http.get(
        f"/api/{session_id}/chat/{phone}@s.whatsapp.net/messages?limit=100"
    )
    assert status == 200, body
    return {item["id"]: item["content"] for item in body["results"]["data"]}


def _has(gateway: Gateway, session_id: str, phone: str, ids: list[str]) -> bool:
    return set(ids) <= set(_history(gateway, session_id, phone))


def _gateways(gateway_factory, sandbox, tmp_path: Path, target_env: dict[str, str]):
    args = ["--sandbox", sandbox.url]
    source = gateway_factory(env=SUBPROCESS_WORKERS, data_dir=tmp_path / "a", args=args)
    target = gateway_factory(
        env={**SUBPROCESS_WORKERS, **target_env}, data_dir=tmp_path / "b", args=args
    )
    return source, target


def _move(
    source: Gateway,
    target: Gateway,
    sandbox,
    tmp_path: Path,
    phones: tuple[str, str],
    statuses: Callable[[], set[str]],
) -> Path:
    """Pair ``mover`` and ``peer`` at the SQLite ``source``, move ``mover`` to ``target``
    as ``moved`` with the CLI, and check it there: connected without a QR code
    (``statuses`` reads the target registry's transitions of ``moved``), its history, a
    message each way with the peer left behind, its device never logged in twice."""
    mover, peer = phones
    new_phone(sandbox, mover, "Mover")
    new_phone(sandbox, peer, "Peer")
    pair(source, sandbox, "mover", mover)
    pair(source, sandbox, "peer", peer)

    before = [_send(source, "peer", mover, f"to mover {n}") for n in range(3)]
    before += [_send(source, "mover", peer, f"from mover {n}") for n in range(2)]
    wait_until(lambda: _has(source, "mover", peer, before), 20, what="history at the source")

    archive = tmp_path / "mover.gowa.tar.gz"
    done = _cli(source, "export", "mover", str(archive))
    assert done.returncode == 0, done.stderr
    assert "stopped and marked exported" in done.stderr
    exported = source.session("mover")
    assert exported["status"] == "STOPPED" and "exported" in exported["error"]
    status, body = source.http.post("/api/sessions/mover/start")
    assert (status, body["code"]) == (409, "SESSION_EXPORTED")

    done = _cli(target, "import", str(archive), "--as", "moved")
    assert done.returncode == 0, done.stderr
    moved = target.wait_status("moved", {"CONNECTED"}, timeout=30)
    assert moved["me"]["jid"] == f"{mover}@s.whatsapp.net"
    assert "SCAN_QR_CODE" not in statuses()
    assert _has(target, "moved", peer, before), "history after the move"

    after_in = _send(source, "peer", mover, "to the moved session")
    wait_until(lambda: _has(target, "moved", peer, [after_in]), 20, what="a message received")
    after_out = _send(target, "moved", peer, "from the moved session")
    wait_until(lambda: _has(source, "peer", mover, [after_out]), 20, what="a message sent")

    status, phone = sandbox.api("GET", f"/sim/phones/{mover}")
    assert status == 200, phone
    assert [d["replaced"] for d in phone["devices"]] == [0], phone
    assert [d["connected"] for d in phone["devices"]] == [True]
    return archive


def test_export_and_import_between_gateways(gateway_factory, sandbox, tmp_path: Path):
    def statuses() -> set[str]:
        with sqlite3.connect(tmp_path / "b" / "gowa.db") as registry:
            rows = registry.execute("SELECT status FROM transitions WHERE session_id = 'moved'")
            return {status for (status,) in rows}

    source, target = _gateways(gateway_factory, sandbox, tmp_path, {})
    archive = _move(source, target, sandbox, tmp_path, (MOVER, PEER), statuses)

    # Deleting the exported source must not log out the device it moved.
    status, body = source.http.call("DELETE", "/api/sessions/mover")
    assert (status, body["results"]["unlinked"]) == (200, True), body
    _send(target, "moved", PEER, "still linked")
    assert target.session("moved")["status"] == "CONNECTED"
    status, phone = sandbox.api("GET", f"/sim/phones/{MOVER}")
    assert [d["connected"] for d in phone["devices"]] == [True], phone

    # The same archive again: the id is taken, then the device is here already.
    done = _cli(target, "import", str(archive), "--as", "moved")
    assert done.returncode != 0 and "already exists" in done.stderr
    done = _cli(target, "import", str(archive), "--as", "twice")
    assert done.returncode != 0 and "DEVICE_LIVE" in done.stderr, done.stderr
    assert target.http.get("/api/sessions/twice")[0] == 404


def test_sqlite_to_postgresql_and_back(gateway_factory, sandbox, tmp_path: Path, test_database):
    def statuses() -> set[str]:
        with psycopg.connect(test_database.url) as conn:
            rows = conn.execute(
                "SELECT status FROM gowa.transitions WHERE session_id = 'moved'"
            ).fetchall()
        return {status for (status,) in rows}

    source, target = _gateways(
        gateway_factory, sandbox, tmp_path, {"GOWA_DATABASE_URL": test_database.url}
    )
    try:
        _move(source, target, sandbox, tmp_path, (PG_MOVER, PG_PEER), statuses)
        # The stores are in the session's schema; its folder keeps only media.
        assert not list((target.data_dir / "sessions" / "moved").glob("*.db"))
        assert "gowa_s_moved" in test_database.schemas()

        # And back to SQLite, under another id at the first gateway (where the exported
        # "mover", stopped for good, does not count as the device running there).
        history = list(_history(target, "moved", PG_PEER))
        archive = tmp_path / "back.gowa.tar.gz"
        done = _cli(target, "export", "moved", str(archive))
        assert done.returncode == 0, done.stderr
        done = _cli(source, "import", str(archive), "--as", "back")
        assert done.returncode == 0, done.stderr
        source.wait_status("back", {"CONNECTED"}, timeout=30)
        assert _has(source, "back", PG_PEER, history)
        message_id = _send(source, "back", PG_PEER, "home again")
        wait_until(lambda: _has(source, "peer", PG_MOVER, [message_id]), 20, what="a message")
        _, phone = sandbox.api("GET", f"/sim/phones/{PG_MOVER}")
        assert [d["replaced"] for d in phone["devices"]] == [0], phone
    finally:
        target.cleanup()
        test_database.empty()
