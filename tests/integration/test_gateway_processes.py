"""The real ``gowa serve`` with real worker processes (neonize inside), as a user runs it.

No WhatsApp is reachable here, so workers sit in DISCONNECTED retrying their dial; that is
enough to prove process isolation, restarts, persistence and cleanup.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from tests.procs import ROOT, find_workers, wait_until

pytestmark = pytest.mark.integration

FAST = {"GOWA_HEALTH_INTERVAL": "1", "GOWA_HEALTH_TIMEOUT": "1", "GOWA_HEALTH_FAILURES": "3"}


def _create(gateway, session_id, start=True):
    status, body = gateway.http.post("/api/sessions", {"session_id": session_id, "start": start})
    assert status == 201, body
    return body["results"]


def test_ten_sessions_get_ten_workers_and_folders(gateway):
    ids = [f"s{n}" for n in range(10)]
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda i: _create(gateway, i), ids))
    pids = {i: gateway.wait_pid(i) for i in ids}
    assert len(set(pids.values())) == 10
    for pid in pids.values():
        assert psutil.pid_exists(pid)
    folders = sorted(p.name for p in (gateway.data_dir / "sessions").iterdir())
    assert folders == sorted(ids)

    # A worker that cannot reach WhatsApp reports why instead of crash-looping.
    session = gateway.wait_status("s0", {"DISCONNECTED"})
    assert session["error"] and "web.whatsapp.com" in session["error"]
    assert session["worker"]["restarts"] == 0

    # kill -9 of one worker: it gets a new pid, the nine others keep theirs.
    os.kill(pids["s3"], signal.SIGKILL)
    new_pid = gateway.wait_pid("s3", not_pid=pids["s3"], timeout=20)
    assert new_pid != pids["s3"]
    assert gateway.session("s3")["worker"]["restarts"] == 1
    for session_id, pid in pids.items():
        if session_id != "s3":
            assert gateway.session(session_id)["worker"]["pid"] == pid


def test_stop_start_delete(gateway):
    _create(gateway, "a")
    pid = gateway.wait_pid("a")
    status, body = gateway.http.post("/api/sessions/a/stop")
    assert status == 200 and body["results"]["status"] == "STOPPED"
    wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", 10)
    assert body["results"]["worker"]["pid"] is None
    assert (gateway.data_dir / "sessions" / "a").is_dir()

    status, body = gateway.http.post("/api/sessions/a/start")
    assert status == 200
    assert gateway.wait_pid("a") != pid

    status, _ = gateway.http.call("DELETE", "/api/sessions/a")
    assert status == 200
    assert not (gateway.data_dir / "sessions" / "a").exists()
    assert gateway.http.get("/api/sessions/a")[0] == 404
    wait_until(lambda: not find_workers(gateway.data_dir), 10, what="worker gone")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_gateway_exit_leaves_no_process_behind(gateway, sig):
    for n in range(3):
        _create(gateway, f"w{n}")
    pids = [gateway.wait_pid(f"w{n}") for n in range(3)]
    descendants = gateway.descendants()
    assert {p.pid for p in descendants} >= set(pids)
    started = time.monotonic()
    gateway.stop(sig)

    def all_gone() -> bool:
        return not [p for p in descendants if p.is_running() and p.status() != "zombie"]

    wait_until(all_gone, 10, what="every worker to exit")
    assert time.monotonic() - started < 10
    assert not find_workers(gateway.data_dir)


def test_restarted_gateway_brings_back_running_sessions(gateway_factory, tmp_path):
    first = gateway_factory()
    _create(first, "up1")
    _create(first, "up2")
    _create(first, "down", start=False)
    first.wait_pid("up1")
    first.wait_pid("up2")
    first.stop(signal.SIGKILL)
    wait_until(lambda: not find_workers(first.data_dir), 10, what="orphans to exit")

    second = gateway_factory(data_dir=first.data_dir)
    assert second.wait_pid("up1") and second.wait_pid("up2")
    assert second.session("down")["status"] == "STOPPED"
    assert second.session("down")["worker"]["pid"] is None


def test_frozen_worker_is_replaced(gateway_factory):
    gateway = gateway_factory(env=FAST)
    _create(gateway, "frozen")
    pid = gateway.wait_pid("frozen")
    gateway.wait_status("frozen", {"DISCONNECTED"})
    os.kill(pid, signal.SIGSTOP)
    started = time.monotonic()
    new_pid = gateway.wait_pid("frozen", not_pid=pid, timeout=30)
    assert time.monotonic() - started < 30
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    assert new_pid != pid


def test_crash_loop_ends_in_failed(gateway_factory):
    gateway = gateway_factory(env={"GOWA_CRASH_LIMIT": "3", "GOWA_CRASH_WINDOW": "120"})
    _create(gateway, "boom")
    last = None
    for _ in range(3):
        pid = gateway.wait_pid("boom", not_pid=last, timeout=30)
        os.kill(pid, signal.SIGKILL)
        last = pid
    session = gateway.wait_status("boom", {"FAILED"}, timeout=30)
    assert "crashed 3 times" in session["error"]
    assert session["worker"]["pid"] is None
    # A manual start clears the failure.
    gateway.http.post("/api/sessions/boom/start")
    assert gateway.wait_pid("boom", not_pid=last)


def test_status_events_stream_over_websocket(gateway):
    import asyncio

    import aiohttp

    async def run() -> list[dict]:
        seen: list[dict] = []
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{gateway.http.base}/api/dashboard/events?session_id=ev") as ws,
        ):
            await asyncio.to_thread(_create, gateway, "ev")
            await asyncio.to_thread(_create, gateway, "other")
            async with asyncio.timeout(20):
                async for message in ws:
                    event = json.loads(message.data)
                    seen.append(event)
                    if (
                        event["event"] == "session.status"
                        and event["payload"]["status"] == "DISCONNECTED"
                    ):
                        return seen
        return seen

    events = asyncio.run(run())
    assert {e["session_id"] for e in events} == {"ev"}
    statuses = [e["payload"]["status"] for e in events if e["event"] == "session.status"]
    assert statuses[0] == "STOPPED" and "STARTING" in statuses and statuses[-1] == "DISCONNECTED"
    for event in events:
        assert set(event) >= {"id", "event", "session_id", "device_id", "timestamp", "payload"}


def test_default_session_is_created_on_first_unprefixed_use(gateway):
    status, body = gateway.http.get("/app/status")
    assert status == 200 and body["results"]["device_id"] == "default"
    assert gateway.wait_pid("default")
    status, body = gateway.http.get("/app/status", headers={"X-Device-Id": "missing"})
    assert status == 404


def test_cli_against_running_gateway(gateway):
    env = {**os.environ, "GOWA_URL": gateway.http.base}

    def gowa(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gowa_py", "session", *args],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )

    assert gowa("create", "cli1").returncode == 0
    listed = gowa("--json", "list")
    assert listed.returncode == 0, listed.stderr
    assert [s["id"] for s in json.loads(listed.stdout)] == ["cli1"]
    table = gowa("list").stdout
    assert table.splitlines()[0].split()[:2] == ["ID", "STATUS"] and "cli1" in table
    assert json.loads(gowa("--json", "stop", "cli1").stdout)["status"] == "STOPPED"
    bad = gowa("show", "../etc")
    assert bad.returncode != 0 and "INVALID_SESSION_ID" in bad.stderr
    assert gowa("delete", "--yes", "cli1").returncode == 0
    assert json.loads(gowa("--json", "list").stdout) == []
