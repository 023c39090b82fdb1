"""Opening the gateway's stores: the one place the gateway chooses a storage backend.

The gateway, supervisor and deliverer are typed against ``gowa_py.storage.interfaces``;
this module maps them to an implementation. Today that is SQLite: the registry in
``gowa.db`` in the data dir, a session's webhook outbox in its ``chats.db``.
"""

from __future__ import annotations

from pathlib import Path

from gowa_py.registry import Registry
from gowa_py.storage.interfaces import OutboxStorage, RegistryStorage
from gowa_py.webhooks.outbox import Outbox


def open_registry(data_dir: Path) -> RegistryStorage:
    """Open (creating or migrating as needed) the registry of the gateway in ``data_dir``."""
    return Registry(data_dir / "gowa.db")


def open_outbox(session_dir: Path) -> OutboxStorage:
    """Open (creating or migrating as needed) the webhook outbox of one session."""
    return Outbox(session_dir / "chats.db")


def existing_outbox(session_dir: Path) -> OutboxStorage | None:
    """The session's webhook outbox if it has one; None rather than creating it."""
    path = session_dir / "chats.db"
    return Outbox(path) if path.exists() else None
