"""``gowa import gowa`` from start to end: the checks, the data dir's lock, the plan, and
the import (see :mod:`gowa_py.importers.gowa`)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from gowa_py.archive.offline import locked_registry
from gowa_py.ids import is_valid_session_id
from gowa_py.importers import ImportRefused, pg_target, source, whatsmeow_store
from gowa_py.importers.gowa import Existing, ImportPlan, plan_import, remove_from_source, run_import
from gowa_py.importers.gowa_settings import Carry
from gowa_py.serve import DataDirBusy, lock_data_dir
from gowa_py.storage.factory import PostgresStorage
from gowa_py.storage.interfaces import RegistryStorage


@dataclass(frozen=True)
class ImportOptions:
    folder: Path | None
    data_dir: Path
    db_uri: str | None = None
    keys_uri: str | None = None
    chats_uri: str | None = None
    #: Which of GoWA's settings to carry over (and GoWA's environment to read them from).
    carry: Carry = field(default_factory=Carry)
    #: The session id for the store's only device, instead of GoWA's id or its number.
    session_id: str | None = None
    dry_run: bool = False
    remove_from_source: bool = False
    #: The gateway's PostgreSQL database, when it keeps its sessions there.
    database_url: str | None = None


@contextlib.contextmanager
def work_folder(data_dir: Path) -> Iterator[Path]:
    """A private folder in the data dir (the same file system: sessions move by rename)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".import-", dir=data_dir) as name:
        os.chmod(name, 0o700)
        yield Path(name)


def existing(
    data_dir: Path, registry: RegistryStorage | None, database_url: str | None
) -> Existing:
    """The gateway's sessions (registered, or only a folder) and their logins."""
    folder = data_dir / "sessions"
    ids = {record.id for record in registry.all()} if registry is not None else set()
    ids |= {path.name for path in folder.iterdir()} if folder.is_dir() else set()
    logins = {}
    for session_id in ids:
        if database_url and is_valid_session_id(session_id):
            jid = pg_target.device_jid(database_url, session_id)
        else:
            jid = whatsmeow_store.device_jid(folder / session_id / "whatsmeow.db")
        if jid is not None:
            logins[jid] = session_id
    return Existing(frozenset(ids), logins)


@contextlib.contextmanager
def _registry(
    data_dir: Path, dry_run: bool, database_url: str | None
) -> Iterator[RegistryStorage | None]:
    """The gateway's registry (in its PostgreSQL database with ``database_url``), the
    data dir locked against a gateway; none for a dry run into an SQLite data dir that
    has none (it writes nothing)."""
    if database_url:
        lock = lock_data_dir(data_dir)
        try:
            try:
                storage = PostgresStorage(database_url)
            except psycopg.Error as exc:
                raise ImportRefused(
                    f"cannot open the gateway's PostgreSQL database: {exc}"
                ) from exc
            try:
                yield storage.registry
            finally:
                storage.close()
        finally:
            os.close(lock)
    elif dry_run and not (data_dir / "gowa.db").exists():
        yield None
    else:
        with locked_registry(data_dir, create=True) as registry:
            yield registry


def import_gowa(options: ImportOptions, say: Callable[[str], None]) -> ImportPlan:
    """The whole command: check, plan, and (unless a dry run) import."""
    files = source.locate(options.folder, options.db_uri, options.keys_uri, options.chats_uri)
    source.check_idle(files)
    try:
        with (
            _registry(options.data_dir, options.dry_run, options.database_url) as registry,
            work_folder(options.data_dir) as work,
        ):
            copy = source.snapshot(files, work)
            source.check_idle(files)
            found = existing(options.data_dir, registry, options.database_url)
            plan = plan_import(files, copy, found, options.carry, options.session_id)
            say(plan.describe())
            if options.dry_run or registry is None:
                say("dry run: nothing was written")
                return plan
            run_import(plan, copy, options.data_dir, registry, work, options.database_url)
    except DataDirBusy as exc:
        raise ImportRefused(
            f"{exc}: stop the gateway, import, then start it again (the import writes "
            "the registry, which only one process may do)"
        ) from exc
    names = ", ".join(device.session_id for device in plan.devices)
    say(f"imported {len(plan.devices)} session(s): {names}")
    if options.remove_from_source:
        remove_from_source(plan)
        say("removed the imported devices from GoWA's databases")
    say("start the gateway (gowa serve): the sessions connect without a QR code")
    return plan
