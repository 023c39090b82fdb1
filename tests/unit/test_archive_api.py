"""The export and import routes of an in-process gateway (no worker runs): answers,
refusals as 4xx JSON, the exported mark, and admin-only access."""

from __future__ import annotations

import io
import sqlite3
import tarfile

from gowa_py.archive import pack
from gowa_py.gateway.keys import SUPERVISOR

ADMIN = {"X-Api-Key": "admin-key"}
ENV = {"GOWA_API_KEY": "admin-key"}
HOOK = {"url": "https://hooks.example/x", "secret": "s3cret"}


async def _session(client, session_id: str) -> None:
    body = {"session_id": session_id, "start": False, "config": {"webhooks": [HOOK]}}
    response = await client.post("/api/sessions", json=body, headers=ADMIN)
    assert response.status == 201, await response.text()


async def _export(client, session_id: str, query: str = "") -> bytes:
    response = await client.post(f"/api/sessions/{session_id}/export{query}", headers=ADMIN)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "application/gzip"
    return await response.read()


async def test_export_then_import_into_another_gateway(make_client):
    source, target = await make_client(ENV), await make_client(ENV)
    await _session(source, "sales")
    data = await _export(source, "sales")
    manifest = pack.peek(io.BytesIO(data))
    assert manifest.session_id == "sales" and manifest.session.config.webhooks[0].secret

    response = await source.get("/api/sessions/sales", headers=ADMIN)
    session = (await response.json())["results"]
    assert session["status"] == "STOPPED" and "exported" in session["error"]
    response = await source.post("/api/sessions/sales/start", headers=ADMIN)
    body = await response.json()
    assert (response.status, body["code"]) == (409, "SESSION_EXPORTED"), body

    response = await source.delete("/api/sessions/sales", headers=ADMIN)
    body = await response.json()
    assert (response.status, body["results"]["unlinked"]) == (200, True), body

    response = await target.post(
        "/api/sessions/moved/import?start=false",
        data=data,
        headers={**ADMIN, "Content-Type": "application/gzip"},
    )
    body = await response.json()
    assert response.status == 201, body
    assert body["results"]["id"] == "moved"
    assert body["results"]["config"]["webhooks"][0] == {**HOOK, "secret": "****", "events": []}

    response = await target.post(
        "/api/sessions/moved/import", data=data, headers={**ADMIN, "Content-Type": "x"}
    )
    body = await response.json()
    assert (response.status, body["code"]) == (409, "SESSION_EXISTS")


async def test_bad_archives_are_4xx_and_leave_nothing(make_client):
    client = await make_client(ENV)
    for data in (b"", b"junk", b"\x1f\x8b\x08\x00garbage"):
        response = await client.post("/api/sessions/x/import", data=data, headers=ADMIN)
        body = await response.json()
        assert (response.status, body["code"]) == (400, "ARCHIVE_INVALID"), body
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        tar.addfile(tarfile.TarInfo("session/../../evil"), io.BytesIO(b""))
    response = await client.post("/api/sessions/x/import", data=raw.getvalue(), headers=ADMIN)
    assert response.status == 400
    response = await client.post("/api/sessions/..%2Fx/import", data=b"", headers=ADMIN)
    assert response.status in (400, 404)
    response = await client.get("/api/sessions", headers=ADMIN)
    assert (await response.json())["results"] == []


async def test_keep_running_archive_needs_force(make_client):
    source, target = await make_client(ENV), await make_client(ENV)
    await _session(source, "sales")
    data = await _export(source, "sales", "?keep_running=true")
    response = await source.get("/api/sessions/sales", headers=ADMIN)
    assert (await response.json())["results"]["error"] is None
    response = await target.post("/api/sessions/sales/import", data=data, headers=ADMIN)
    body = await response.json()
    assert (response.status, body["code"]) == (409, "DEVICE_LIVE"), body
    response = await target.post(
        "/api/sessions/sales/import?force=true&start=false", data=data, headers=ADMIN
    )
    assert response.status == 201


async def test_scoped_keys_cannot_move_sessions(make_client):
    client = await make_client(ENV)
    await _session(client, "sales")
    response = await client.post(
        "/api/keys", json={"sessions": ["sales"], "scope": "full"}, headers=ADMIN
    )
    key = (await response.json())["results"]["key"]
    for path in ("/api/sessions/sales/export", "/api/sessions/sales/import"):
        response = await client.post(path, data=b"", headers={"X-Api-Key": key})
        body = await response.json()
        assert (response.status, body["code"]) == (403, "FORBIDDEN"), path


async def test_sqlite_to_postgresql_and_back(make_client, test_database, tmp_path):
    """An archive's SQLite stores go into the session's schema at a gateway on PostgreSQL,
    and come out of it again as an archive a SQLite gateway imports."""
    import psycopg

    from gowa_py.archive import offline
    from tests.unit.test_archive import _make_session

    _make_session(tmp_path / "source", "sales")
    archive = tmp_path / "sales.tar.gz"
    offline.export_session(tmp_path / "source", "sales", archive, keep_running=False)
    postgres = await make_client({**ENV, "GOWA_DATABASE_URL": test_database.url})
    try:
        response = await postgres.post(
            "/api/sessions/moved/import?start=false", data=archive.read_bytes(), headers=ADMIN
        )
        body = await response.json()
        assert response.status == 201, body
        assert body["results"]["me"]["jid"] == "15550001111@s.whatsapp.net"
        with psycopg.connect(test_database.url) as conn:
            counts = {
                table: conn.execute(f'SELECT count(*) FROM gowa_s_moved."{table}"').fetchone()[0]
                for table in ("messages", "whatsmeow_device", "whatsmeow_version")
            }
        assert counts == {"messages": 50, "whatsmeow_device": 1, "whatsmeow_version": 1}
        folder = postgres.server.app[SUPERVISOR].sessions_dir / "moved"
        assert sorted(p.name for p in folder.iterdir()) == ["media"]
        response = await postgres.post("/api/sessions/junk/import", data=b"junk", headers=ADMIN)
        assert response.status == 400
        assert test_database.schemas() == ["gowa", "gowa_s_moved"]

        data = await _export(postgres, "moved")
        manifest = pack.peek(io.BytesIO(data))
        assert set(manifest.files) == {"chats.db", "whatsmeow.db", "media/image/abc123.jpg"}
        sqlite = await make_client(ENV)
        response = await sqlite.post(
            "/api/sessions/back/import?start=false", data=data, headers=ADMIN
        )
        assert response.status == 201, await response.text()
        back = sqlite.server.app[SUPERVISOR].sessions_dir / "back"
        with sqlite3.connect(back / "chats.db") as db:
            assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 50
        with sqlite3.connect(back / "whatsmeow.db") as db:
            assert db.execute("SELECT jid FROM whatsmeow_device").fetchall() == [
                ("15550001111@s.whatsapp.net",)
            ]
    finally:
        await postgres.close()
        test_database.empty()
