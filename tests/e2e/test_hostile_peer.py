"""A malicious WhatsApp peer: what it controls in a message must not reach our file system
or our memory unchecked."""

from __future__ import annotations

import base64
import hashlib

import pytest

from tests.e2e.conftest import (
    SUBPROCESS_WORKERS,
    EventWatcher,
    is_event,
    new_phone,
    pair,
    session_dir,
)
from tests.procs import wait_until

pytestmark = pytest.mark.integration


def test_auto_download_never_writes_outside_media(gateway_factory, sandbox):
    """Injected: a contact sends a document whose message id climbs out of the media folder
    onto the session's own whatsmeow.db (``media/document/../../whatsmeow`` + ``.db``). The
    file must land under media/, the key store must stay a database, and the session must
    keep working."""
    gateway = gateway_factory(env=SUBPROCESS_WORKERS, args=["--sandbox", sandbox.url])
    message_id, filename = "../../whatsmeow", "x.db"
    victim, peer = "15550000601", "15550000611"
    new_phone(sandbox, victim, "Victim")
    new_phone(sandbox, peer, "Mallory")
    pair(gateway, sandbox, "victim", victim)
    status, body = gateway.http.call(
        "PATCH", "/api/sessions/victim", {"config": {"auto_download_media": True}}
    )
    assert status == 200, body
    folder = session_dir(gateway, "victim")
    watcher = EventWatcher(gateway.http.base.replace("http", "ws") + "/api/dashboard/events")
    payload = b"not a database " + hashlib.sha256(message_id.encode()).digest()
    try:
        status, body = sandbox.api(
            "POST",
            f"/sim/phones/{peer}/send-document",
            {
                "to": victim,
                "id": message_id,
                "filename": filename,
                "mimetype": "application/octet-stream",
                "data": base64.b64encode(payload).decode(),
            },
        )
        assert status == 200, body
        watcher.wait(is_event("message", "victim", id=message_id), 20, "the document")
        media = folder / "media"
        saved = wait_until(
            lambda: [p for p in media.rglob("*") if p.is_file() and p.read_bytes() == payload],
            20,
            what="the document saved under media/",
        )
        assert len(saved) == 1 and saved[0].resolve().is_relative_to(media.resolve())
    finally:
        watcher.close()
    with (folder / "whatsmeow.db").open("rb") as store:
        assert store.read(16) == b"SQLite format 3\x00"
    status, body = gateway.http.post(
        "/api/victim/send/message", {"phone": peer, "message": "still here"}
    )
    assert status == 200, body
