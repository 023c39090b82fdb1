"""Moving a paired session between two real gateways with the ``gowa`` CLI: it connects at
the new one without a QR code, keeps its history, sends and receives with the keys it
brought, and the sandbox never sees its device logged in twice."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import SUBPROCESS_WORKERS, new_phone, pair
from tests.procs import GOWA, ROOT, Gateway, wait_until

pytestmark = pytest.mark.integration

MOVER, PEER = "15550007101", "15550007102"


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


def test_export_and_import_between_gateways(gateway_factory, sandbox, tmp_path: Path):
    new_phone(sandbox, MOVER, "Mover")
    new_phone(sandbox, PEER, "Peer")
    args = ["--sandbox", sandbox.url]
    source = gateway_factory(env=SUBPROCESS_WORKERS, data_dir=tmp_path / "a", args=args)
    target = gateway_factory(env=SUBPROCESS_WORKERS, data_dir=tmp_path / "b", args=args)
    pair(source, sandbox, "mover", MOVER)
    pair(source, sandbox, "peer", PEER)

    before = [_send(source, "peer", MOVER, f"to mover {n}") for n in range(3)]
    before += [_send(source, "mover", PEER, f"from mover {n}") for n in range(2)]
    wait_until(lambda: _has(source, "mover", PEER, before), 20, what="history at the source")

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
    assert moved["me"]["jid"] == f"{MOVER}@s.whatsapp.net"
    with sqlite3.connect(target.data_dir / "gowa.db") as registry:
        rows = registry.execute("SELECT status FROM transitions WHERE session_id = 'moved'")
        assert "SCAN_QR_CODE" not in {status for (status,) in rows}
    assert _has(target, "moved", PEER, before), "history after the move"

    after_in = _send(source, "peer", MOVER, "to the moved session")
    wait_until(lambda: _has(target, "moved", PEER, [after_in]), 20, what="a message received")
    after_out = _send(target, "moved", PEER, "from the moved session")
    wait_until(lambda: _has(source, "peer", MOVER, [after_out]), 20, what="a message sent")

    status, phone = sandbox.api("GET", f"/sim/phones/{MOVER}")
    assert status == 200, phone
    assert [d["replaced"] for d in phone["devices"]] == [0], phone
    assert [d["connected"] for d in phone["devices"]] == [True]

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
