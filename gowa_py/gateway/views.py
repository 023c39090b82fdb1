"""How a session looks from outside: the session JSON of DESIGN.md §4 and GoWA's device shapes."""

from __future__ import annotations

from typing import Any

import msgspec

from gowa_py.protocol import SessionState
from gowa_py.registry import SessionRecord, iso
from gowa_py.supervisor.runner import SessionRunner

# GoWA v9's device ``state`` vocabulary.
GOWA_STATE = {
    SessionState.STARTING: "connecting",
    SessionState.DISCONNECTED: "connecting",
    SessionState.SCAN_QR_CODE: "connected",
    SessionState.CONNECTED: "logged_in",
}


def session_json(record: SessionRecord, runner: SessionRunner | None) -> dict[str, Any]:
    worker: dict[str, Any] = {
        "pid": None,
        "started_at": None,
        "restarts": 0,
        "memory": {"rss": 0, "pss": 0, "uss": 0},
        "cpu_percent": 0.0,
    }
    if runner is not None:
        pid = runner.pid
        worker["pid"] = pid
        worker["restarts"] = runner.restarts
        if pid is not None:
            worker["started_at"] = iso(runner.started_at)
            sample = runner.sample
            worker["memory"] = {"rss": sample.rss, "pss": sample.pss, "uss": sample.uss}
            worker["cpu_percent"] = round(sample.cpu_percent, 2)
    return {
        "id": record.id,
        "status": record.status.value,
        "status_since": iso(record.status_at),
        "error": record.error,
        "created_at": iso(record.created_at),
        "last_activity": iso(record.last_activity),
        "me": {"jid": record.me.jid, "push_name": record.me.push_name} if record.me else None,
        "worker": worker,
        "config": msgspec.to_builtins(record.config),
    }


def connection_flags(record: SessionRecord) -> dict[str, bool]:
    """GoWA's ``is_connected`` (socket up, logged in or showing a QR) and ``is_logged_in``."""
    return {
        "is_connected": record.status in (SessionState.CONNECTED, SessionState.SCAN_QR_CODE),
        "is_logged_in": record.status == SessionState.CONNECTED and record.me is not None,
    }


def device_json(record: SessionRecord) -> dict[str, Any]:
    jid = record.me.jid if record.me else ""
    return {
        "id": record.id,
        "phone_number": jid.split("@", 1)[0] if jid else "",
        "display_name": record.me.push_name if record.me else "",
        "state": GOWA_STATE.get(record.status, "disconnected"),
        "jid": jid,
        "created_at": iso(record.created_at),
    }


def device_webhook_json(record: SessionRecord) -> dict[str, Any]:
    hook = record.config.webhooks[0] if record.config.webhooks else None
    return {
        "device_id": record.id,
        "webhook_url": hook.url if hook else "",
        "webhook_secret": (hook.secret or "") if hook else "",
        "webhook_events": ",".join(hook.events) if hook else "",
        "webhook_insecure_skip_verify": False,
    }
