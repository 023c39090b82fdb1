"""Sandbox group persistence: a database from before the group settings opens and keeps
its groups; settings, invite codes and join requests round-trip."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gowa_py.sim.history import valid_chats
from gowa_py.sim.store import Store

OLD_GROUPS = """
CREATE TABLE phones (phone TEXT PRIMARY KEY, push_name TEXT NOT NULL, lid TEXT NOT NULL UNIQUE,
    signing_seed BLOB NOT NULL, next_device INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL);
CREATE TABLE groups (gid TEXT PRIMARY KEY, subject TEXT NOT NULL, creator TEXT NOT NULL,
    created_at INTEGER NOT NULL);
CREATE TABLE group_members (gid TEXT NOT NULL REFERENCES groups(gid) ON DELETE CASCADE,
    phone TEXT NOT NULL REFERENCES phones(phone) ON DELETE CASCADE,
    admin INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (gid, phone));
INSERT INTO phones VALUES ('15550000001', 'Ann', '100000000000001', x'00', 1, 0);
INSERT INTO groups VALUES ('120363000000000001', 'Old', '15550000001', 1700000000);
INSERT INTO group_members VALUES ('120363000000000001', '15550000001', 1);
"""


def test_a_database_from_before_group_settings_keeps_its_groups(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "sim.db")
    db.executescript(OLD_GROUPS)
    db.close()
    store = Store(tmp_path / "sim.db")
    group = store.groups.group("120363000000000001")
    assert group is not None and (group.subject, group.locked, group.invite) == ("Old", False, "")
    assert store.groups.members(group.gid) == [("15550000001", True)]
    store.close()


def test_settings_invites_and_requests_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "sim.db")
    store.create_phone("15550000001", "Ann", b"\x00" * 32)
    store.create_phone("15550000002", "Ben", b"\x01" * 32)
    store.groups.create("120363000000000002", "Crew", "15550000001", [])
    created = store.groups.group("120363000000000002")
    assert created is not None and len(created.invite) == 22
    assert store.groups.by_invite(created.invite) == created
    store.groups.update(created.gid, topic="hi", topic_id="T1", locked=True, approval=True)
    changed = store.groups.group(created.gid)
    assert changed is not None and (changed.topic, changed.locked, changed.approval) == (
        "hi",
        True,
        True,
    )
    with pytest.raises(ValueError):
        store.groups.update(created.gid, creator="15550000002")
    store.groups.request(created.gid, "15550000002")
    assert [phone for phone, _ in store.groups.requests(created.gid)] == ["15550000002"]
    assert store.groups.of_member("15550000001") == [created.gid]
    store.close()


def test_history_chats_are_checked() -> None:
    chats = [{"jid": "1@s.whatsapp.net", "messages": [{"id": "a", "text": "t", "t": 1}]}]
    assert valid_chats(chats) == chats
    for bad in (None, [{"jid": "no-at"}], [{"jid": "1@s", "messages": [{"id": "a"}]}]):
        with pytest.raises(ValueError):
            valid_chats(bad)
