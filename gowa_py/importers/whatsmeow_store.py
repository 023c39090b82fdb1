"""One device's rows of a whatsmeow store, moved into a store of its own.

GoWA v8 and later keep every device in one whatsmeow ``sqlstore`` (v7 has one device);
a gowa-py session has its own ``whatsmeow.db``, the same schema, opened by neonize's
whatsmeow. Every whatsmeow table but two is keyed by the device's JID (``our_jid``, or
``jid`` in the device, pre-key and app-state tables), so a device's store is the source
with every other device's rows removed. ``whatsmeow_lid_map`` (LID to phone number) is
a cache of public facts all devices read, kept whole; ``whatsmeow_version`` is the schema.

A copy keeps the source's schema version: neonize upgrades an older one when it opens
it, and a store newer than neonize's whatsmeow is refused before anything is written.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from gowa_py.importers import ImportRefused
from gowa_py.privatefile import private_sqlite
from gowa_py.storage import sqlitefile

#: The ``whatsmeow_version`` of the stores neonize's whatsmeow creates (and upgrades to);
#: tests/e2e/test_import_gowa.py checks it against a store neonize made.
NEONIZE_STORE_VERSION = 15
#: The tables GoWA keeps in its ``DB_KEYS_URI`` store instead, when it has one (it hands
#: whatsmeow that store for identities, sessions, pre-keys, sender keys and secrets).
KEY_TABLES = (
    "whatsmeow_identity_keys",
    "whatsmeow_sessions",
    "whatsmeow_pre_keys",
    "whatsmeow_sender_keys",
    "whatsmeow_message_secrets",
)
_SCHEMA_TABLES = ("whatsmeow_version",)


@dataclass(frozen=True)
class StoreDevice:
    """A logged-in device of the store (a ``whatsmeow_device`` row)."""

    jid: str  # with its device number: 15550001234:7@s.whatsapp.net
    push_name: str = ""

    @property
    def phone(self) -> str:
        return self.jid.split("@", 1)[0].split(":", 1)[0]

    @property
    def non_ad(self) -> str:
        """The JID without the device number: GoWA's chat-storage key for the device."""
        return f"{self.phone}@{self.jid.split('@', 1)[-1]}"

    @property
    def number(self) -> int:
        user = self.jid.split("@", 1)[0]
        return int(user.split(":", 1)[1]) if ":" in user else 0


def _tables(conn: sqlite3.Connection, schema: str = "main") -> list[str]:
    query = (
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name LIKE 'whatsmeow%'"
    )
    return [row[0] for row in conn.execute(query)]


def _owner(conn: sqlite3.Connection, table: str, schema: str = "main") -> str | None:
    """The column naming the device a row belongs to; None for a shared table."""
    if table in _SCHEMA_TABLES:
        return None
    names = {row[1] for row in conn.execute(f'PRAGMA {schema}.table_info("{table}")')}
    return "our_jid" if "our_jid" in names else "jid" if "jid" in names else None


def open_store(path: Path) -> sqlite3.Connection:
    """The (copied) store, checked to be a whatsmeow store neonize can open."""
    conn = sqlite3.connect(path)
    try:
        tables = set(_tables(conn))
        if not {"whatsmeow_device", "whatsmeow_version"} <= tables:
            raise ImportRefused("GoWA's database is not a whatsmeow store (no whatsmeow_device)")
        version, compat = conn.execute("SELECT version, compat FROM whatsmeow_version").fetchone()
    except (sqlite3.DatabaseError, TypeError) as exc:
        conn.close()
        raise ImportRefused(f"GoWA's whatsmeow store cannot be read: {exc}") from exc
    except ImportRefused:
        conn.close()
        raise
    if (compat or version) > NEONIZE_STORE_VERSION:
        conn.close()
        raise ImportRefused(
            f"the whatsmeow store is schema version {version} (readable from version "
            f"{compat}), newer than the {NEONIZE_STORE_VERSION} of this gowa-py's neonize: "
            "upgrade gowa-py first"
        )
    return conn


def devices(conn: sqlite3.Connection) -> list[StoreDevice]:
    rows = conn.execute("SELECT jid, push_name FROM whatsmeow_device ORDER BY jid")
    return [StoreDevice(jid, push_name or "") for jid, push_name in rows]


def count_rows(conn: sqlite3.Connection, jid: str, schema: str = "main") -> dict[str, int]:
    """The device's rows per table (shared tables: all their rows)."""
    counts = {}
    for table in _tables(conn, schema):
        if table in _SCHEMA_TABLES:
            continue
        owner = _owner(conn, table, schema)
        where, args = (f' WHERE "{owner}" = ?', (jid,)) if owner else ("", ())
        counts[table] = conn.execute(
            f'SELECT COUNT(*) FROM {schema}."{table}"{where}', args
        ).fetchone()[0]
    return counts


def extract(store: Path, keys: Path | None, jid: str, target: Path) -> dict[str, int]:
    """Write the store of device ``jid`` to ``target`` (new); returns its rows per table."""
    private_sqlite(target)
    source = sqlite3.connect(store)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
        source.close()
        if keys is not None:
            copy.execute("ATTACH DATABASE ? AS keys", (str(keys),))
        with copy:
            for table in _tables(copy):
                owner = _owner(copy, table)
                if owner:
                    copy.execute(f'DELETE FROM "{table}" WHERE "{owner}" IS NOT ?', (jid,))
            if keys is not None:
                _take_keys(copy, jid)
        if keys is not None:
            copy.execute("DETACH DATABASE keys")
        copy.execute("VACUUM")
        return count_rows(copy, jid)
    finally:
        source.close()
        copy.close()


def _take_keys(copy: sqlite3.Connection, jid: str) -> None:
    """Replace the key tables' rows by the device's rows of the attached keys store."""
    present = set(_tables(copy, "keys"))
    for table in KEY_TABLES:
        if table not in present:
            continue
        owner = _owner(copy, table)
        ours = [row[1] for row in copy.execute(f'PRAGMA main.table_info("{table}")')]
        theirs = {row[1] for row in copy.execute(f'PRAGMA keys.table_info("{table}")')}
        columns = ", ".join(f'"{name}"' for name in ours if name in theirs)
        copy.execute(f'DELETE FROM main."{table}"')
        copy.execute(
            f'INSERT INTO main."{table}" ({columns}) SELECT {columns} FROM keys."{table}" '
            f'WHERE "{owner}" = ?',
            (jid,),
        )


def remove_device(path: Path, jid: str) -> None:
    """Delete device ``jid``'s rows from the store at ``path`` (``--remove-from-source``)."""
    conn = sqlite3.connect(path, timeout=5)
    try:
        with conn:
            for table in _tables(conn):
                owner = _owner(conn, table)
                if owner:
                    conn.execute(f'DELETE FROM "{table}" WHERE "{owner}" = ?', (jid,))
    finally:
        conn.close()


def device_jid(path: Path) -> str | None:
    """The device a session's store is logged in as (None: no store, or no login)."""
    if not path.is_file():
        return None
    conn = sqlitefile.read_only(path)
    try:
        row = conn.execute("SELECT jid FROM whatsmeow_device").fetchone()
    except sqlite3.DatabaseError:
        return None
    finally:
        conn.close()
    return row[0] if row else None
