"""``gowa import gowa``: a GoWA installation's devices become sessions of a stopped gateway.

One session per logged-in device of GoWA's whatsmeow store, named after GoWA's device id
(v8 and later) or else the phone number; the device's rows move into the session's own
``whatsmeow.db`` and its chats and messages into the session's ``chats.db`` (on a
PostgreSQL gateway, staged so and then moved into the session's schema: ``pg_target``),
and the session is registered to run, so the next ``gowa serve`` connects it without a
QR code.

The gateway must be stopped: the import holds the data dir's lock while it writes the
registry, as a gateway would. Everything is prepared in a folder of the data dir and
moved into place last; a failure removes what this run created. The source is read
from a copy and only changed with ``remove_from_source``, after everything succeeded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from gowa_py.ids import is_valid_session_id
from gowa_py.importers import (
    ImportRefused,
    gowa_chats,
    pg_source,
    pg_target,
    source,
    whatsmeow_store,
)
from gowa_py.importers.gowa_chats import GowaDevice
from gowa_py.importers.gowa_settings import Carry, session_config
from gowa_py.importers.whatsmeow_store import StoreDevice
from gowa_py.models import SessionConfig, mask_proxy
from gowa_py.protocol import Me
from gowa_py.storage.interfaces import RegistryStorage


@dataclass
class DevicePlan:
    """What the import does for one device."""

    session_id: str
    device: StoreDevice
    gowa: GowaDevice | None
    owners: list[str]  # the chat-storage device_id values of the device (v8 and later)
    rows: dict[str, int]
    chats: int = 0
    messages: int = 0
    config: SessionConfig = field(default_factory=SessionConfig)

    def describe(self) -> str:
        rows = sum(n for table, n in self.rows.items() if table != "whatsmeow_lid_map")
        named = f"GoWA device {self.gowa.device_id!r}" if self.gowa else "GoWA's device"
        hooks = ", ".join(hook.url for hook in self.config.webhooks) or "none"
        defaults = SessionConfig()
        settings = ", ".join(
            f"{name}={mask_proxy(value) if name == 'proxy' else value!r}"
            for name, value in msgspec.structs.asdict(self.config).items()
            if name != "webhooks" and value != getattr(defaults, name)
        )
        return (
            f"session {self.session_id}: {named}, {self.device.jid}"
            f"{f' ({self.device.push_name})' if self.device.push_name else ''}\n"
            f"  store: {rows} rows of this device, {self.rows.get('whatsmeow_lid_map', 0)} "
            f"LID mappings\n  history: {self.chats} chats, {self.messages} messages\n"
            f"  webhooks: {hooks}\n  settings: {settings or 'the defaults'}"
        )


@dataclass
class ImportPlan:
    files: source.SourceFiles
    devices: list[DevicePlan]
    skipped: list[str]

    def describe(self) -> str:
        lines = [f"GoWA store {source.shown(self.files.store)}"]
        if self.files.keys:
            lines.append(f"keys store {source.shown(self.files.keys)}")
        lines.append(f"chat storage {self.files.chats or '(none: no history to import)'}")
        lines += [plan.describe() for plan in self.devices]
        lines += [f"skipped: {reason}" for reason in self.skipped]
        return "\n".join(lines)


def gowa_device(store: StoreDevice, known: list[GowaDevice]) -> GowaDevice | None:
    """GoWA's registry row of a store device: by full JID, else by an unambiguous number."""
    exact = [d for d in known if d.ad_jid == store.jid]
    if len(exact) == 1:
        return exact[0]
    loose = [d for d in known if not d.ad_jid and d.jid == store.non_ad]
    return loose[0] if len(loose) == 1 else None


@dataclass(frozen=True)
class Existing:
    """What the data dir holds already: session ids, and the device each is logged in as."""

    sessions: frozenset[str] = frozenset()
    logins: Mapping[str, str] = field(default_factory=dict)  # device JID -> session id


def plan_import(
    files: source.SourceFiles,
    copy: source.Snapshot,
    existing: Existing,
    carry: Carry,
    name: str | None = None,
) -> ImportPlan:
    """Read the copied databases and decide every session; refuses before any write.

    ``carry`` says which of GoWA's settings the sessions get; ``name`` is the session id
    of a store's only device.
    """
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(contextlib.closing(whatsmeow_store.open_store(copy.store)))
        chats = (
            stack.enter_context(contextlib.closing(sqlite3.connect(copy.chats)))
            if copy.chats
            else None
        )
        keys = (
            stack.enter_context(contextlib.closing(sqlite3.connect(copy.keys)))
            if copy.keys
            else None
        )
        if chats is not None and not gowa_chats.is_chat_storage(chats):
            raise ImportRefused(f"{files.chats} is not GoWA's chat storage (no messages table)")
        found = whatsmeow_store.devices(store)
        if not found:
            raise ImportRefused(
                f"{source.shown(files.store)} holds no logged-in device: nothing to import"
            )
        if name is not None and len(found) != 1:
            raise ImportRefused(f"--session-id names one session; the store has {len(found)}")
        known = gowa_chats.registry(chats) if chats is not None else []
        plans = []
        for device in found:
            gowa = gowa_device(device, known)
            rows = whatsmeow_store.count_rows(store, device.jid)
            if keys is not None:
                in_keys = whatsmeow_store.count_rows(keys, device.jid)
                rows.update({t: in_keys[t] for t in whatsmeow_store.KEY_TABLES if t in in_keys})
            owners = _owners(device, gowa, single=len(found) == 1)
            session_id = name or _session_id(device, gowa, found)
            plan = DevicePlan(session_id, device, gowa, owners, rows)
            if chats is not None:
                plan.chats, plan.messages = gowa_chats.count(chats, owners)
            plan.config = session_config(carry, gowa)
            plans.append(plan)
    skipped = [
        f"GoWA device {d.device_id!r} has no login in the store (never paired, or logged out)"
        for d in known
        if not any(p.gowa == d for p in plans)
    ]
    ids = [p.session_id for p in plans]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ImportRefused(f"two GoWA devices would both become session {', '.join(twice)}")
    clashes = [
        f"session {p.session_id} already exists" for p in plans if p.session_id in existing.sessions
    ]
    clashes += [
        f"{p.device.jid} is logged in here already, as session {existing.logins[p.device.jid]} "
        "(two clients of one device get one logged out)"
        for p in plans
        if p.device.jid in existing.logins
    ]
    if clashes:
        raise ImportRefused(
            "; ".join(clashes) + ": delete it first, or import into another data dir "
            "(nothing was imported)"
        )
    return ImportPlan(files, plans, skipped)


def _owners(device: StoreDevice, gowa: GowaDevice | None, single: bool) -> list[str]:
    """Every ``device_id`` GoWA's releases filed this device's history under."""
    owners = [device.non_ad, device.jid]
    if gowa is not None:
        owners.append(gowa.device_id)
    if single:
        owners.append("")
    return owners


def _session_id(device: StoreDevice, gowa: GowaDevice | None, found: list[StoreDevice]) -> str:
    if gowa is not None and is_valid_session_id(gowa.device_id):
        return gowa.device_id
    siblings = [d for d in found if d.phone == device.phone]
    name = device.phone if len(siblings) == 1 else f"{device.phone}-{device.number}"
    if not is_valid_session_id(name):
        raise ImportRefused(f"no usable session id for {device.jid}")
    return name


def run_import(
    plan: ImportPlan,
    copy: source.Snapshot,
    data_dir: Path,
    registry: RegistryStorage,
    work: Path,
    database_url: str | None = None,
) -> None:
    """Create the planned sessions (all or none): their files in the data dir, or with
    ``database_url`` (a PostgreSQL gateway) their schemas in that database."""
    sessions = data_dir / "sessions"
    sessions.mkdir(mode=0o700, parents=True, exist_ok=True)
    created: list[str] = []
    try:
        for device in plan.devices:
            staging = work / device.session_id
            staging.mkdir(mode=0o700)
            whatsmeow_store.extract(
                copy.store, copy.keys, device.device.jid, staging / "whatsmeow.db"
            )
            if copy.chats is not None:
                gowa_chats.copy_history(copy.chats, device.owners, staging / "chats.db")
            target = sessions / device.session_id
            if target.exists():
                raise ImportRefused(f"{target} already exists (nothing was imported)")
            if database_url:
                pg_target.install(database_url, device.session_id, staging)
            else:
                os.rename(staging, target)
            created.append(device.session_id)
            registry.create(device.session_id, device.config, "running")
            registry.set_me(
                device.session_id, Me(jid=device.device.non_ad, push_name=device.device.push_name)
            )
    except BaseException:
        for session_id in created:
            if database_url:
                pg_target.remove(database_url, session_id)
            with contextlib.suppress(OSError):
                shutil.rmtree(sessions / session_id)
            registry.delete(session_id)
        raise


def remove_from_source(plan: ImportPlan) -> None:
    """Delete the imported devices from GoWA's databases (after a successful import)."""
    source.check_idle(plan.files)
    for device in plan.devices:
        for store in (plan.files.store, plan.files.keys):
            if isinstance(store, str):
                pg_source.remove_device(store, device.device.jid)
            elif store is not None:
                whatsmeow_store.remove_device(store, device.device.jid)
        if plan.files.chats is not None:
            gowa_id = device.gowa.device_id if device.gowa else None
            gowa_chats.remove_device(plan.files.chats, device.owners, gowa_id)
