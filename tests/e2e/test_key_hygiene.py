"""The API key never leaks: not in logs (gateway, workers), events, webhooks, session files,
nor in the environment of worker processes, whatever clients throw at the gateway."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import psutil
import pytest

from tests.e2e.conftest import EventWatcher, new_phone, pair
from tests.procs import find_workers, wait_until
from tests.receiver import WebhookReceiver

pytestmark = pytest.mark.integration


def _files_containing(root: Path, needle: bytes) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            found.append(str(path))
    return found


def test_api_key_never_leaks(gateway_factory, sandbox, tmp_path):
    key = "leakcheck-" + secrets.token_hex(16)
    needle = key.encode()
    receiver = WebhookReceiver("s").start()
    gateway = gateway_factory(
        env={
            "GOWA_API_KEY": key,
            "GOWA_LOG_LEVEL": "DEBUG",
            "GOWA_WORKER_LOG_LEVEL": "DEBUG",
            "GOWA_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
        },
        args=["--sandbox", sandbox.url],
    )
    watcher = EventWatcher(
        gateway.http.base.replace("http", "ws") + "/api/dashboard/events", {"X-Api-Key": key}
    )
    try:
        tx, rx = new_phone(sandbox, "1888000001", "Tx"), new_phone(sandbox, "1888000002", "Rx")
        pair(gateway, sandbox, "ktx", tx)
        pair(gateway, sandbox, "krx", rx)
        hook = {"url": receiver.url, "secret": "s"}  # every event
        for session_id in ("ktx", "krx"):
            status, body = gateway.http.call(
                "PATCH", f"/api/sessions/{session_id}", {"config": {"webhooks": [hook]}}
            )
            assert status == 200, body
        status, body = gateway.http.post("/api/ktx/send/message", {"phone": rx, "message": "hi"})
        assert status == 200, body

        anonymous = type(gateway.http)(gateway.http.base)
        basic = base64.b64encode(f"admin:{key}".encode()).decode()
        attempts = [
            ("GET", f"/api/sessions?api_key={key}", {}),
            ("GET", f"/api/sessions?x-api-key={key}&device_id={key}", {}),
            ("POST", f"/send/message?token={key}", {"X-Api-Key": key + "x"}),
            ("GET", "/api/sessions", {"X-Api-Key": key[:-1]}),
            ("GET", "/api/sessions", {"Authorization": f"Bearer {key}"}),
            ("GET", "/api/sessions", {"Authorization": f"Basic {basic}"}),
            ("GET", f"/api/{key[:60]}/app/status", {"X-Device-Id": key}),
            ("GET", f"/nope/{key}", {"Referer": key}),
        ]
        for method, path, headers in attempts:
            status, _ = anonymous.call(method, path, headers=headers)
            assert status in (400, 401, 404, 405), (path, status)
        status, _ = anonymous.post("/api/dashboard/login", {"api_key": key + "x"})
        assert status == 401
        status, _ = anonymous.post("/api/dashboard/login", {"api_key": key})
        assert status == 200
        # Authenticated requests that carry the key in odd places too.
        gateway.http.get(f"/api/sessions/krx?api_key={key}")
        gateway.http.post("/api/ktx/send/message", {"phone": rx, "message": "again", "k": key})

        wait_until(lambda: len(receiver.items("message")) >= 2, 20, what="webhooks")
        wait_until(lambda: watcher.find(lambda e: e["event"] == "message"), 10, what="events")
    finally:
        watcher.close()
        receiver.close()

    assert watcher.events and not [e for e in watcher.events if key in json.dumps(e)]
    for item in receiver.items():
        assert key not in json.dumps(item.body) and key not in json.dumps(item.headers)
    children = [p for p in gateway.descendants() if p.status() != psutil.STATUS_ZOMBIE]
    assert len(children) >= 2  # two workers (and the zygote they were forked from)
    for process in children:
        assert key not in json.dumps(process.environ()), process.cmdline()
    gateway.stop()
    assert not find_workers(gateway.data_dir)
    assert gateway.log_path.read_text().count("ktx") > 0  # the log was written...
    assert _files_containing(tmp_path, needle) == []  # ...and no log or file holds the key
