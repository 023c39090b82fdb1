"""Why a worker died: the reason it left in its session folder, or the Go runtime's last
words in worker.log (a fatal error or a panic bypasses Python)."""

from __future__ import annotations

import os
from pathlib import Path

from gowa_py import protocol as p

#: Bytes of a worker's exit reason shown in the session's ``error``.
MAX_EXIT_REASON = 2000
#: How the Go runtime's fatal errors and panics begin on stderr, and how much of the end
#: of worker.log is searched for one.
GO_FAILURE_PREFIXES = ("fatal error: ", "panic: ")
LOG_TAIL_BYTES = 64 * 1024


def take_exit_reason(session_dir: Path) -> str | None:
    """Why the session's last worker failed, if it said so (read once, then removed)."""
    path = session_dir / p.EXIT_REASON_FILE
    try:
        with path.open("rb") as file:
            reason = file.read(MAX_EXIT_REASON).decode("utf-8", "replace").strip()
    except FileNotFoundError:
        return None
    path.unlink(missing_ok=True)
    return reason or None


def log_position(session_dir: Path) -> tuple[int, int]:
    """Where worker.log ends now, as (inode, size): a new worker's output starts there."""
    try:
        info = (session_dir / "worker.log").stat()
    except FileNotFoundError:
        return (0, 0)
    return (info.st_ino, info.st_size)


def go_failure(session_dir: Path, since: tuple[int, int]) -> str | None:
    """The Go runtime's last words in worker.log after ``since`` (:func:`log_position`),
    if it died of a fatal error or a panic: those bypass Python, so no exit reason is left
    for them."""
    try:
        with (session_dir / "worker.log").open("rb") as file:
            inode, offset = since
            size = file.seek(0, os.SEEK_END)
            if os.fstat(file.fileno()).st_ino != inode or offset > size:
                offset = 0  # rotated since: all of it is the new worker's
            file.seek(max(offset, size - LOG_TAIL_BYTES))
            text = file.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    lines = [line for line in text.splitlines() if line.startswith(GO_FAILURE_PREFIXES)]
    return lines[-1].strip()[:MAX_EXIT_REASON] if lines else None
