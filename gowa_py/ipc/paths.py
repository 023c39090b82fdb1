"""Where the sockets live: ``ipc://`` files in a short per-data-dir runtime directory, so
socket paths stay under the kernel's 107-byte limit whatever the data directory is."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

MAX_IPC_PATH = 107


def runtime_dir(data_dir: str | os.PathLike[str]) -> Path:
    """A short private directory for this data dir's sockets (one per gateway instance);
    the gateway creates it when it binds and removes it when it closes."""
    digest = hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"gowa-{os.getuid()}-{digest}"
    if len(str(path)) + 16 > MAX_IPC_PATH:
        path = Path("/tmp") / f"gowa-{digest}"
    return path


def endpoints(data_dir: str | os.PathLike[str]) -> tuple[str, str]:
    """The (command, event) endpoints of the gateway that owns ``data_dir``."""
    base = runtime_dir(data_dir)
    return f"ipc://{base}/cmd.sock", f"ipc://{base}/evt.sock"
