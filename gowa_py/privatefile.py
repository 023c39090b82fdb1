"""SQLite files that hold secrets, readable by their owner only.

The registry (``gowa.db``) keeps webhook secrets and proxy passwords; a session's
``chats.db`` its messages. With the default umask they would be created 0644, readable by
every local user. SQLite creates a database's ``-wal`` and ``-shm`` (and ``-journal``)
with the database file's own mode, so creating that file 0600 first covers them too;
files an older version created are tightened when opened.

The gateway runs as root and opens a session's ``chats.db`` (its webhook outbox) in a
folder that belongs to the session's worker uid: a database it creates there goes to the
folder's owner, or the worker could no longer write its own store. SQLite, run as root,
gives a new ``-wal``/``-shm`` the database file's owner by itself.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

MODE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal")


def private_sqlite(path: Path) -> None:
    """Create ``path`` 0600 if it does not exist, owned by its folder's owner when we are
    root; make it and its side files 0600."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, MODE)
    try:
        if os.geteuid() == 0:
            folder, info = os.stat(path.parent), os.fstat(fd)
            if (info.st_uid, info.st_gid) != (folder.st_uid, folder.st_gid):
                os.fchown(fd, folder.st_uid, folder.st_gid)
    finally:
        os.close(fd)
    for name in (str(path), *(f"{path}{suffix}" for suffix in SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            if os.stat(name).st_mode & 0o777 != MODE:
                os.chmod(name, MODE)
