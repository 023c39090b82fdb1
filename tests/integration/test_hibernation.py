"""Hibernation: an idle session's worker stops, the next request wakes it, nothing is lost.

Real sandbox, real gateway (zygote workers). ``idle_timeout`` is at least 60 s, so this
test takes a little over a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys

import psutil
import pytest

from tests.e2e.conftest import EventWatcher, new_phone, pair
from tests.procs import Gateway, wait_until
from tests.sim.harness import SandboxProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def sandbox(tmp_path):
    sim = SandboxProcess(tmp_path / "sim")
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def gateway(sandbox, tmp_path):
    gateway = Gateway(tmp_path / "data", args=["--sandbox", sandbox.url])
    gateway.start()
    yield gateway
    gateway.cleanup()


def test_idle_session_hibernates_and_wakes_with_its_messages(sandbox, gateway):
    sleepy, awake = (
        new_phone(sandbox, "5511970000001", "Sleepy"),
        new_phone(sandbox, "5511970000002", "Awake"),
    )
    pair(gateway, sandbox, "sleepy", sleepy)
    pair(gateway, sandbox, "awake", awake)
    status, body = gateway.http.call(
        "PATCH", "/api/sessions/sleepy", {"config": {"idle_timeout": 60}}
    )
    assert status == 200, body
    pid = gateway.session("sleepy")["worker"]["pid"]
    assert gateway.session("sleepy")["hibernating"] is False

    events = EventWatcher(gateway.http.base.replace("http", "ws") + "/api/dashboard/events")
    try:
        session = wait_until(
            lambda: (s := gateway.session("sleepy"))["status"] == "STOPPED" and s,
            90,
            interval=1,
            what="sleepy to hibernate",
        )
        assert "hibernated" in session["error"]
        assert session["worker"]["pid"] is None
        # Told apart from a manual stop: in the session JSON, its status event, the CLI table.
        assert session["hibernating"] is True
        stopped = events.wait(
            lambda e: (
                e["event"] == "session.status"
                and e["session_id"] == "sleepy"
                and e["payload"]["status"] == "STOPPED"
            ),
            5,
            "sleepy's STOPPED event",
        )
        assert stopped["payload"]["hibernating"] is True
        listed = subprocess.run(
            [sys.executable, "-m", "gowa_py", "session", "--url", gateway.http.base, "list"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "STOPPED (hibernating)" in listed.stdout, listed
        wait_until(
            lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", 10
        )
        assert gateway.session("awake")["status"] == "CONNECTED"

        status, body = gateway.http.post(
            "/api/awake/send/message",
            {"phone": f"{sleepy}@s.whatsapp.net", "message": "sent while you slept"},
        )
        assert status == 200, body
        # A request for the hibernated session waits for it to wake up and then succeeds.
        status, body = gateway.http.post(
            "/api/sleepy/send/message",
            {"phone": f"{awake}@s.whatsapp.net", "message": "good morning"},
        )
        assert status == 200, body
        assert gateway.session("sleepy")["status"] == "CONNECTED"
        assert gateway.session("sleepy")["hibernating"] is False
        events.wait(
            lambda e: (
                e.get("session_id") == "sleepy"
                and e.get("event") == "message"
                and "sent while you slept" in json.dumps(e)
            ),
            30,
            "the message that arrived during hibernation",
        )
    finally:
        events.close()
