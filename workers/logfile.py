"""``worker.log``, rotated by size while the worker runs.

The worker rotates its own file instead of the gateway reading its output through a
pipe: an idle worker then costs nothing (no pipe and no gateway wake-up per line, no
descriptor in the gateway per worker), a busy one a byte count per record, and the log
keeps being written if the gateway dies. Rotation renames the file to ``worker.log.1``
(replacing the previous one) and points stdout and stderr at a new ``worker.log``, so
Go's own writes to stderr (a panic) follow too; they, like any write that bypasses
logging, are caught by :meth:`RotatingLog.check` on the worker's periodic tick. The
total per session stays within two files of ``max_bytes`` and a quarter.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

#: Counted bytes between two looks at the file's real size (at most a quarter of the limit).
CHECK_EVERY = 64 * 1024
#: A log record with this attribute set stays in worker.log, out of the live log that
#: reaches API clients (``log.warning(..., extra={LOCAL_ONLY: True})``).
LOCAL_ONLY = "local_only"


class RotatingLog(logging.StreamHandler):
    """Writes records to stderr (the session's ``worker.log``) and rotates that file
    before a record would take it past ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        super().__init__(sys.stderr)
        self.path = path
        self.max_bytes = max_bytes
        self._check_every = max(1, min(CHECK_EVERY, max_bytes // 4))
        self._unchecked = 0
        self._size = self._real_size()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record) + self.terminator
            if self._size + len(message) > self.max_bytes and self._size > 0:
                self._rotate()
            self.stream.write(message)
            self.flush()
        except Exception:
            self.handleError(record)
            return
        self._size += len(message)
        self._unchecked += len(message)
        if self._unchecked >= self._check_every:
            self._check()

    def check(self) -> None:
        """Rotate if writes that bypass logging took the file past the limit (callable
        from any thread)."""
        with self.lock:  # type: ignore[union-attr]
            self._check()

    def _check(self) -> None:
        self._unchecked = 0
        self._size = self._real_size()
        if self._size > self.max_bytes:
            self._rotate()

    def _real_size(self) -> int:
        try:
            return os.fstat(2).st_size
        except OSError:
            return 0

    def _rotate(self) -> None:
        try:
            current, on_disk = os.fstat(2), os.stat(self.path)
            if (on_disk.st_dev, on_disk.st_ino) != (current.st_dev, current.st_ino):
                return  # stderr is not our file (a worker started by hand)
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        self._size = 0
