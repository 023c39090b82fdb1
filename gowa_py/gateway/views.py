"""How a session looks from outside: the session JSON (README.md) and GoWA's device shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from gowa_py.models import SECRET_MASK
from gowa_py.protocol import SessionState
from gowa_py.registry import SessionRecord, iso
from gowa_py.supervisor import WorkerInfo

# GoWA v9's device ``state`` vocabulary.
GOWA_STATE = {
    SessionState.STARTING: "connecting",
    SessionState.DISCONNECTED: "connecting",
    SessionState.SCAN_QR_CODE: "connected",
    SessionState.CONNECTED: "logged_in",
}


def session_json(
    record: SessionRecord, info: WorkerInfo | None, node: str | None = None
) -> dict[str, Any]:
    """``node``: the cluster node running the session (None: none, or no cluster)."""
    worker: dict[str, Any] = {
        "pid": None,
        "started_at": None,
        "restarts": 0,
        "memory": {"rss": 0, "pss": 0, "uss": 0},
        "cpu_percent": 0.0,
    }
    if info is not None:
        pid = info.pid
        worker["pid"] = pid
        worker["restarts"] = info.restarts
        if pid is not None:
            worker["started_at"] = iso(info.started_at)
            sample = info.sample
            worker["memory"] = {"rss": sample.rss, "pss": sample.pss, "uss": sample.uss}
            worker["cpu_percent"] = round(sample.cpu_percent, 2)
    return {
        "id": record.id,
        "status": record.status.value,
        "hibernating": info is not None and info.hibernated and not info.running,
        "status_since": iso(record.status_at),
        "error": record.error,
        "created_at": iso(record.created_at),
        "last_activity": iso(record.last_activity),
        "me": {"jid": record.me.jid, "push_name": record.me.push_name} if record.me else None,
        "worker": worker,
        "node": node,
        "config": record.config.public(),
    }


# What a session's JSON is made of: the record (replaced, never mutated, on every registry
# write), its worker's pid, restart count, start time and last sample, and its node.
_ViewKey = tuple[SessionRecord, WorkerInfo | None, str | None]
_encode = msgspec.json.Encoder().encode


def _view_key(record: SessionRecord, info: WorkerInfo | None, node: str | None) -> _ViewKey:
    return (record, info, node)


class SessionViews:
    """Encoded session JSON, reused while everything it is made of is unchanged.

    ``GET /api/sessions`` is the most frequent call (dashboards and CRMs poll it) and
    formatting 4 timestamps per session dominated the gateway's CPU under load
    (docs/benchmarks.md, "API latency"). Each request still compares the inputs of every session
    with those of the cached bytes, so a change is never served stale, whatever made it
    (registry write, worker restart or exit, new sample); only the encoding is skipped.
    The JSON does not depend on the caller or on query parameters.
    """

    def __init__(self) -> None:
        self._one: dict[str, tuple[_ViewKey, bytes]] = {}
        self._list: tuple[list[_ViewKey], bytes] | None = None

    def _fragment(self, record: SessionRecord, key: _ViewKey) -> bytes:
        cached = self._one.get(record.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        data = _encode(session_json(*key))
        self._one[record.id] = (key, data)
        return data

    def one(
        self, record: SessionRecord, info: WorkerInfo | None, node: str | None = None
    ) -> msgspec.Raw:
        """The session JSON of ``record``, ready to embed in an envelope."""
        return msgspec.Raw(self._fragment(record, _view_key(record, info, node)))

    def many(
        self,
        records: list[SessionRecord],
        workers: dict[str, WorkerInfo],
        nodes: Mapping[str, str] | None = None,
    ) -> msgspec.Raw:
        """A JSON array of the session JSON of ``records``, in their order."""
        nodes = nodes or {}
        keys = [_view_key(r, workers.get(r.id), nodes.get(r.id)) for r in records]
        if self._list is not None and self._list[0] == keys:
            return msgspec.Raw(self._list[1])
        fragments = [self._fragment(record, key) for record, key in zip(records, keys, strict=True)]
        # Forget sessions that are gone, so the cache never outgrows the registry.
        for session_id in self._one.keys() - {record.id for record in records}:
            del self._one[session_id]
        data = b"[" + b",".join(fragments) + b"]"
        self._list = (keys, data)
        return msgspec.Raw(data)


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
        "webhook_secret": SECRET_MASK if hook and hook.secret else "",
        "webhook_events": ",".join(hook.events) if hook else "",
        "webhook_insecure_skip_verify": False,
    }


def deleted_message(unlinked: bool) -> str:
    """What deleting a session says; a device left linked on the phone is named."""
    if unlinked:
        return "Session deleted"
    return (
        "Session deleted, but it could not be logged out of WhatsApp (not connected): "
        "the phone still lists it as a linked device; remove it there"
    )
