"""Any client, not only whatsmeow: an unmodified Baileys pairs with a sandbox phone.

Baileys (the library under Evolution API and WAHA's NOWEB engine) speaks dictionary v2,
races the first frame after the handshake, needs key indexes in device lists, asks for
A/B props at login, and holds every event back until the phone's history sync arrives
with the app-state key shared: the sandbox must accept and send what WhatsApp does. The Node client
(tests/sim/baileys, installed by ``make install-test`` with ``npm ci``) is driven over
stdio; it logs in and exchanges text messages both ways with a gateway session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import is_event, new_phone, pair
from tests.procs import Gateway
from tests.sim.harness import SandboxProcess

CLIENT_DIR = Path(__file__).resolve().parents[1] / "sim" / "baileys"
GATEWAY_PHONE = "15550007001"
BAILEYS_PHONE = "15550007002"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (CLIENT_DIR / "node_modules" / "baileys").is_dir(),
    reason="Node or tests/sim/baileys/node_modules missing (make install-test runs npm ci)",
)


class BaileysClient:
    """``node client.js`` as a subprocess: JSON lines out, send commands in."""

    def __init__(self, auth_dir: Path, sandbox: SandboxProcess) -> None:
        env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(sandbox.data_dir / "ca.pem")}
        self.proc = subprocess.Popen(
            ["node", str(CLIENT_DIR / "client.js"), str(auth_dir), sandbox.url],
            cwd=CLIENT_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self._consumed: dict[str, int] = {}
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(json.loads(line))
                self._cond.notify_all()

    def expect(self, key: str, timeout: float = 15) -> Any:
        """The first line not yet expected carrying ``key``; fails on ``closed``/``error``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for index, line in enumerate(self.lines):
                    assert "closed" not in line and "error" not in line, line
                    if key in line and index >= self._consumed.get(key, 0):
                        self._consumed[key] = index + 1
                        return line[key]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"Baileys printed no {key!r} in {timeout} s: {self.lines}")
                self._cond.wait(left)

    def send(self, to: str, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"to": to, "text": text}) + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def baileys(
    sandbox: SandboxProcess, sandbox_gateway: Gateway, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BaileysClient]:
    """A gateway session on one sandbox phone, Baileys paired with another and logged in."""
    new_phone(sandbox, GATEWAY_PHONE, "Gateway")
    new_phone(sandbox, BAILEYS_PHONE, "Baileys")
    pair(sandbox_gateway, sandbox, "gw", GATEWAY_PHONE)
    # like a real phone, it sends the new companion a history sync (and the app-state key)
    history = [{"jid": f"{GATEWAY_PHONE}@s.whatsapp.net", "name": "Gateway", "messages": []}]
    status, body = sandbox.api("PUT", f"/sim/phones/{BAILEYS_PHONE}/history", {"chats": history})
    assert status == 200, body
    client = BaileysClient(tmp_path_factory.mktemp("baileys") / "auth", sandbox)
    try:
        qr = client.expect("qr")
        status, body = sandbox.api("POST", f"/sim/phones/{BAILEYS_PHONE}/scan", {"qr": qr})
        assert status == 200, body
        assert client.expect("open").startswith(f"{BAILEYS_PHONE}:")
        assert client.expect("history") == len(history)
        yield client
    finally:
        client.stop()


def test_baileys_receives_from_a_gateway_session(
    sandbox: SandboxProcess, sandbox_gateway: Gateway, baileys: BaileysClient
) -> None:
    status, body = sandbox_gateway.http.post(
        "/api/gw/send/message", {"phone": BAILEYS_PHONE, "message": "hello Baileys"}
    )
    assert status == 200, body
    received = baileys.expect("message")
    assert received["text"] == "hello Baileys"
    status, phone = sandbox.api("GET", f"/sim/phones/{GATEWAY_PHONE}")
    assert status == 200, phone
    # whatsmeow sends to a LID-migrated account from its LID, as on WhatsApp
    assert received["from"] in (phone["lid"], f"{GATEWAY_PHONE}@s.whatsapp.net")


def test_baileys_receives_a_gateway_sessions_group_message(
    sandbox_gateway: Gateway, baileys: BaileysClient
) -> None:
    """Group messages: a sender key distributed to Baileys' device, then ``skmsg``."""
    status, body = sandbox_gateway.http.post(
        "/api/gw/group", {"title": "Mixed", "participants": [BAILEYS_PHONE]}
    )
    assert status == 200, body
    group = body["results"]["group_id"]
    status, body = sandbox_gateway.http.post(
        "/api/gw/send/message", {"phone": group, "message": "hello group"}
    )
    assert status == 200, body
    received = baileys.expect("message")
    assert (received["from"], received["text"]) == (group, "hello group")


def test_a_gateway_session_receives_from_baileys(
    sandbox_gateway: Gateway, baileys: BaileysClient, events: Any
) -> None:
    baileys.send(f"{GATEWAY_PHONE}@s.whatsapp.net", "hello gateway")
    baileys.expect("sent")
    events.wait(
        lambda e: is_event("message", "gw")(e) and e["payload"].get("body") == "hello gateway",
        timeout=15,
        what="the gateway session receives Baileys' message",
    )
