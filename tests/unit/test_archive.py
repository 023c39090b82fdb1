"""Session archives: a round trip through real SQLite files and registries, and every way
an archive is refused (truncated, damaged, newer, unsafe names, a live device, an id in
use), each leaving nothing half-imported."""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile
from pathlib import Path

import msgspec
import pytest

from gowa_py.archive import offline, pack
from gowa_py.archive import session as archive
from gowa_py.archive.manifest import ArchiveInvalid, ArchiveTooNew, DeviceLive
from gowa_py.errors import GowaError
from gowa_py.models import SessionConfig
from gowa_py.protocol import ErrorCode, Me, SessionState
from gowa_py.serve import DataDirBusy, lock_data_dir
from gowa_py.storage import chats_schema
from gowa_py.storage.factory import sqlite_registry

JID = "15550001111@s.whatsapp.net"
CONFIG = {
    "webhooks": [{"url": "https://hooks.example/x", "secret": "s3cret"}],
    "proxy": "socks5://user:pw@proxy.example:1080",
}


def _make_session(data_dir: Path, session_id: str = "sales", messages: int = 50) -> Path:
    """A data dir with one logged-in session: registry row, chats.db, whatsmeow.db, media."""
    data_dir.mkdir(parents=True, exist_ok=True)
    registry = sqlite_registry(data_dir / "gowa.db")
    config = msgspec.convert(CONFIG, SessionConfig)
    registry.create(session_id, config, "running")
    registry.set_me(session_id, Me(jid=JID, push_name="Sales"))
    registry.set_event_log(session_id, "epoch-1", 7)
    registry.close()
    folder = data_dir / "sessions" / session_id
    (folder / "media" / "image").mkdir(parents=True)
    (folder / "media" / "image" / "abc123.jpg").write_bytes(b"\xff\xd8jpeg" * 100)
    (folder / "worker.log").write_text("not archived\n")
    chats = sqlite3.connect(folder / "chats.db", isolation_level=None)
    chats.execute("PRAGMA journal_mode=WAL")
    chats_schema.apply(chats, folder / "chats.db")
    for n in range(messages):
        chats.execute(
            "INSERT INTO messages (id, chat_jid, content, timestamp, created_at, updated_at) "
            "VALUES (?, 'c@s.whatsapp.net', ?, ?, 0, 0)",
            [f"m{n}", f"hello {n}", n],
        )
    chats.execute(
        "UPDATE messages SET media_path = ? WHERE id = 'm1'",
        [str(folder / "media" / "image" / "abc123.jpg")],
    )
    for message_id, path in (("m2", "/srv/x/media/../../etc/passwd"), ("m3", "/etc/passwd")):
        chats.execute("UPDATE messages SET media_path = ? WHERE id = ?", [path, message_id])
    store = sqlite3.connect(folder / "whatsmeow.db", isolation_level=None)
    store.execute("PRAGMA journal_mode=WAL")
    store.execute("CREATE TABLE whatsmeow_version (version INTEGER)")
    store.execute("INSERT INTO whatsmeow_version VALUES (8)")
    store.execute("CREATE TABLE whatsmeow_device (jid TEXT, identity BLOB)")
    store.execute("INSERT INTO whatsmeow_device VALUES (?, randomblob(32))", [JID])
    # Left open: the rows are in the WAL only, as with a worker that never checkpointed.
    _make_session.keep = [chats, store]  # type: ignore[attr-defined]
    return folder


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _export(tmp_path: Path, keep_running: bool = False) -> Path:
    source = tmp_path / "source"
    _make_session(source)
    out = tmp_path / "sales.gowa.tar.gz"
    offline.export_session(source, "sales", out, keep_running)
    return out


def _assert_nothing_imported(data_dir: Path) -> None:
    sessions = data_dir / "sessions"
    assert not sessions.exists() or not any(sessions.iterdir())
    staging = data_dir / "staging"
    assert not staging.exists() or not any(staging.iterdir())
    if (data_dir / "gowa.db").exists():
        registry = sqlite_registry(data_dir / "gowa.db")
        assert registry.all() == []
        registry.close()


def test_round_trip_keeps_store_history_media_and_registry_row(tmp_path):
    out = _export(tmp_path)
    assert out.stat().st_mode & 0o777 == 0o600
    with out.open("rb") as file:
        manifest = pack.peek(file)
    assert manifest.device_jid == JID and not manifest.source_live
    assert set(manifest.files) == {"chats.db", "whatsmeow.db", "media/image/abc123.jpg"}
    assert manifest.schemas == {"chats.db": len(chats_schema.MIGRATIONS), "whatsmeow.db": 8}

    target = tmp_path / "target"
    session_id, _ = offline.import_session(target, out, "moved", force=False, start=True)
    assert session_id == "moved"
    folder = target / "sessions" / "moved"
    assert _count(folder / "chats.db", "messages") == 50
    assert _count(folder / "whatsmeow.db", "whatsmeow_device") == 1
    assert (folder / "media" / "image" / "abc123.jpg").read_bytes() == b"\xff\xd8jpeg" * 100
    assert not (folder / "worker.log").exists()
    with sqlite3.connect(folder / "chats.db") as db:
        paths = dict(db.execute("SELECT id, media_path FROM messages WHERE id IN ('m1','m2','m3')"))
    # Saved media point at the new folder; paths the worker would not write are cleared.
    assert paths == {"m1": str(folder / "media" / "image" / "abc123.jpg"), "m2": "", "m3": ""}
    registry = sqlite_registry(target / "gowa.db")
    record = registry.get("moved")
    registry.close()
    assert record is not None and record.me == Me(jid=JID, push_name="Sales")
    assert record.desired == "running"
    # The secrets travel with the session (the archive is as sensitive as its keys).
    assert record.config.webhooks[0].secret == "s3cret"
    assert record.config.proxy == CONFIG["proxy"]
    assert (record.event_epoch, record.last_event_seq) == ("epoch-1", 7)


def test_export_stops_and_marks_the_source(tmp_path):
    _export(tmp_path)
    registry = sqlite_registry(tmp_path / "source" / "gowa.db")
    record = registry.get("sales")
    registry.close()
    assert record is not None and record.desired == "stopped"
    assert record.status == SessionState.STOPPED and "exported" in (record.error or "")
    assert archive.exported_mark(tmp_path / "source" / "sessions" / "sales") is not None


def test_keep_running_archive_is_refused_unless_forced(tmp_path):
    out = _export(tmp_path, keep_running=True)
    assert archive.exported_mark(tmp_path / "source" / "sessions" / "sales") is None
    target = tmp_path / "target"
    with pytest.raises(DeviceLive, match="left running"):
        offline.import_session(target, out, None, force=False, start=True)
    _assert_nothing_imported(target)
    assert offline.import_session(target, out, None, force=True, start=False)[0] == "sales"


def test_same_device_already_here_is_refused(tmp_path):
    out = _export(tmp_path)
    target = tmp_path / "target"
    offline.import_session(target, out, "first", force=False, start=False)
    with pytest.raises(DeviceLive, match="'first'") as raised:
        offline.import_session(target, out, "second", force=False, start=False)
    assert raised.value.code is ErrorCode.DEVICE_LIVE


def test_existing_session_id_is_refused(tmp_path):
    out = _export(tmp_path)
    target = tmp_path / "target"
    _make_session(target, "sales", messages=3)
    with pytest.raises(GowaError, match="already exists") as raised:
        offline.import_session(target, out, None, force=True, start=False)
    assert raised.value.code is ErrorCode.SESSION_EXISTS
    assert _count(target / "sessions" / "sales" / "chats.db", "messages") == 3
    assert not any((target / "staging").iterdir())


def test_invalid_session_id_is_refused(tmp_path):
    out = _export(tmp_path)
    with pytest.raises(GowaError) as raised:
        offline.import_session(tmp_path / "t", out, "../evil", force=False, start=False)
    assert raised.value.code is ErrorCode.INVALID_SESSION_ID


@pytest.mark.parametrize("keep", [10, 2000, -300])
def test_truncated_archive_is_refused(tmp_path, keep):
    out = _export(tmp_path)
    data = out.read_bytes()
    out.write_bytes(data[:keep])
    target = tmp_path / "target"
    with pytest.raises(ArchiveInvalid):
        offline.import_session(target, out, None, force=False, start=False)
    _assert_nothing_imported(target)


def _rewrite(out: Path, change) -> None:
    """Unpack the archive's members, let ``change`` edit them, pack them again."""
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    with tarfile.open(out, "r:gz") as tar:
        for member in tar:
            data = tar.extractfile(member)
            members.append((member, data.read() if data else None))
    members = change(members)
    with tarfile.open(out, "w:gz") as tar:
        for member, data in members:
            if data is not None:
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data is not None else None)


def _edit_manifest(edit):
    def change(members):
        info, raw = members[0]
        manifest = json.loads(raw)
        edit(manifest)
        return [(info, json.dumps(manifest).encode()), *members[1:]]

    return change


def test_damaged_member_is_refused_by_its_checksum(tmp_path):
    out = _export(tmp_path)

    def flip(members):
        return [
            (m, d[:-1] + bytes([d[-1] ^ 1]) if m.name.endswith(".jpg") else d) for m, d in members
        ]

    _rewrite(out, flip)
    target = tmp_path / "target"
    with pytest.raises(ArchiveInvalid, match="checksum"):
        offline.import_session(target, out, None, force=False, start=False)
    _assert_nothing_imported(target)


def test_newer_format_is_refused(tmp_path):
    out = _export(tmp_path)
    _rewrite(out, _edit_manifest(lambda m: m.update(format_version=99)))
    with pytest.raises(ArchiveTooNew, match="format 99"):
        offline.import_session(tmp_path / "target", out, None, force=False, start=False)
    _assert_nothing_imported(tmp_path / "target")


def test_newer_chats_schema_is_refused(tmp_path):
    source = tmp_path / "source"
    folder = _make_session(source)
    for conn in _make_session.keep:  # type: ignore[attr-defined]
        conn.close()
    with sqlite3.connect(folder / "chats.db") as db:
        db.execute("PRAGMA user_version = 99")
    out = tmp_path / "a.tar.gz"
    offline.export_session(source, "sales", out, False)
    with pytest.raises(ArchiveTooNew, match="schema version 99"):
        offline.import_session(tmp_path / "target", out, None, force=False, start=False)
    _assert_nothing_imported(tmp_path / "target")


@pytest.mark.parametrize(
    "name", ["session/../../evil", "/etc/evil", "session/media/../../../evil", "other.txt"]
)
def test_path_traversal_is_refused(tmp_path, name):
    out = _export(tmp_path)

    def add(members):
        info = tarfile.TarInfo(name)
        return [*members, (info, b"x")]

    _rewrite(out, add)
    target = tmp_path / "target"
    with pytest.raises(ArchiveInvalid, match="unsafe"):
        offline.import_session(target, out, None, force=False, start=False)
    _assert_nothing_imported(target)
    assert not (tmp_path / "evil").exists()


def test_links_are_refused(tmp_path):
    out = _export(tmp_path)

    def link(members):
        info = tarfile.TarInfo("session/media/image/link.jpg")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        return [*members, (info, None)]

    _rewrite(out, link)
    with pytest.raises(ArchiveInvalid, match="unsafe"):
        offline.import_session(tmp_path / "target", out, None, force=False, start=False)


def test_manifest_naming_an_unsafe_file_is_refused(tmp_path):
    out = _export(tmp_path)
    entry = {"sha256": "0" * 64, "size": 1}
    _rewrite(out, _edit_manifest(lambda m: m["files"].update({"../x": entry})))
    with pytest.raises(ArchiveInvalid, match="unsafe file name"):
        offline.import_session(tmp_path / "target", out, None, force=False, start=False)


def test_not_an_archive_is_refused(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not gzip")
    with pytest.raises(ArchiveInvalid):
        offline.import_session(tmp_path / "target", junk, None, force=False, start=False)


def test_offline_refuses_a_data_dir_in_use(tmp_path):
    source = tmp_path / "source"
    _make_session(source)
    fd = lock_data_dir(source)
    try:
        with pytest.raises(DataDirBusy):
            offline.export_session(source, "sales", tmp_path / "x.tar.gz", False)
    finally:
        import os

        os.close(fd)
    assert not (tmp_path / "x.tar.gz").exists()


def test_cli_says_why_and_exits_non_zero(tmp_path):
    from click.testing import CliRunner

    from gowa_py.cli import main

    out = _export(tmp_path)
    out.write_bytes(out.read_bytes()[:-300])
    target = tmp_path / "target"
    result = CliRunner().invoke(main, ["session", "import", str(out), "--data-dir", str(target)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: the archive is truncated")
    _assert_nothing_imported(target)
    result = CliRunner().invoke(
        main, ["session", "export", "nobody", str(tmp_path / "x"), "--data-dir", str(target)]
    )
    assert result.exit_code == 1 and "no session 'nobody'" in result.output
