"""``gowa backup`` of a running gateway while messages stream in, ``gowa restore`` into a
fresh data dir, and a gateway started on it: every message acknowledged before the backup
began is there, and the sessions connect without a QR code."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from tests.e2e.conftest import SUBPROCESS_WORKERS, new_phone, pair
from tests.procs import GOWA, ROOT, Gateway, wait_until

pytestmark = pytest.mark.integration

SENDER, RECEIVER = "15550007201", "15550007202"


class Load:
    """Sends from ``snd`` to ``rcv`` as fast as the API answers, recording each id once
    it is acknowledged (the API answered with it)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.acked: list[str] = []
        self.failure: object = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            status, body = self.gateway.http.post(
                "/api/snd/send/message", {"phone": RECEIVER, "message": f"load {n}"}
            )
            if status != 200:
                self.failure = body
                return
            self.acked.append(body["results"]["message_id"])
            n += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def _ids(gateway: Gateway, session_id: str, phone: str) -> set[str]:
    status, body = gateway.http.get(
        f"/api/{session_id}/chat/{phone}@s.whatsapp.net/messages?limit=1000"
    )
    assert status == 200, body
    return {item["id"] for item in body["results"]["data"]}


def _gowa(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GOWA, *args], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )


def test_backup_under_load_and_restore(gateway_factory, sandbox, tmp_path: Path):
    new_phone(sandbox, SENDER, "Sender")
    new_phone(sandbox, RECEIVER, "Receiver")
    args = ["--sandbox", sandbox.url]
    env = {**SUBPROCESS_WORKERS, "GOWA_RATE_LIMIT": "1000", "GOWA_RATE_LIMIT_BURST": "1000"}
    live = gateway_factory(env=env, data_dir=tmp_path / "live", args=args)
    pair(live, sandbox, "snd", SENDER)
    pair(live, sandbox, "rcv", RECEIVER)

    load = Load(live)
    try:
        wait_until(lambda: len(load.acked) >= 20, 30, what="messages streaming")
        sent_before = list(load.acked)
        received_before = _ids(live, "rcv", SENDER)
        assert received_before
        done = _gowa("backup", str(tmp_path / "backup"), "--data-dir", str(live.data_dir))
        assert done.returncode == 0, done.stderr
        during = len(load.acked) - len(sent_before)
    finally:
        load.stop()
    assert load.failure is None, load.failure
    assert during > 0, "no message was sent while the backup ran"
    live.stop()

    fresh = tmp_path / "restored"
    done = _gowa("restore", str(tmp_path / "backup"), "--data-dir", str(fresh))
    assert done.returncode == 0, done.stderr
    done = _gowa("restore", str(tmp_path / "backup"), "--data-dir", str(fresh))
    assert done.returncode != 0 and "not empty" in done.stderr

    restored = gateway_factory(env=SUBPROCESS_WORKERS, data_dir=fresh, args=args)
    for session_id in ("snd", "rcv"):
        restored.wait_status(session_id, {"CONNECTED"}, timeout=30)
    assert set(sent_before) <= _ids(restored, "snd", RECEIVER)
    assert received_before <= _ids(restored, "rcv", SENDER)
    status, body = restored.http.post(
        "/api/snd/send/message", {"phone": RECEIVER, "message": "after the restore"}
    )
    assert status == 200, body
    message_id = body["results"]["message_id"]
    wait_until(
        lambda: message_id in _ids(restored, "rcv", SENDER), 30, what="a message after restore"
    )
