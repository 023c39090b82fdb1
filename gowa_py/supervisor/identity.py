"""A uid of its own for every session's worker, when the gateway runs as root.

A worker that stayed root could read every file on the machine whatever its mode (the
capabilities of root bypass file permissions), including other sessions' keys and the
registry. So each session gets a uid (and a gid of the same number) from
``worker_uids``, its folder is handed to that uid (0700), and the worker switches to it
before it opens anything (workers/system/confine.py). The range's first id is the workers'
group: the only one besides root that may enter the data dir and the socket folder
(0710, no listing) and connect to the gateway's sockets.

A uid is not persisted: a session keeps the one its folder is owned by while that is in
the range and not taken, so a restart of the gateway changes nothing on disk. The uid
must reach the session folder through every directory above it; where a directory on
that path is closed to other users (a data dir under /root), the gateway says which one
and leaves its workers root, without capabilities and under Landlock; so it does where
it cannot switch to the range's uids at all (a user namespace that does not map them).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import stat
import sysconfig
from pathlib import Path

from gowa_py import protocol as p
from gowa_py.config import parse_id_range

log = logging.getLogger("gowa.supervisor")


def closed_directory(path: Path) -> Path | None:
    """The first directory from / down to ``path`` that users other than its owner and
    group cannot pass through, if any."""
    current = Path("/")
    for part in path.resolve().parts[1:]:
        if not os.stat(current).st_mode & stat.S_IXOTH:
            return current
        current = current / part
    return None


def _go_library_folder() -> Path | None:
    """Where neonize keeps its Go library, which a worker loads once confined: the one file
    it reads after it has switched uid (everything else is imported before)."""
    spec = importlib.util.find_spec("neonize")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _can_switch(uid: int, group: int) -> bool:
    """Whether a child of this process can become ``uid`` with ``group``, as a worker will."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([group])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


class WorkerIds:
    """Assigns session uids from a range and hands session folders to them."""

    def __init__(self, spec: str, data_dir: Path) -> None:
        bounds = parse_id_range(spec) if os.geteuid() == 0 else None
        self.group: int | None = None
        self._free: list[int] = []
        self._assigned: dict[str, int] = {}
        if bounds is None:
            return
        if (closed := closed_directory(data_dir)) is not None:
            log.error(
                "workers stay root (without capabilities) instead of getting a uid each: "
                "%s is closed to other users (chmod o+x it, move data_dir, or set "
                'worker_uids = "off" to silence this)',
                closed,
            )
            return
        if not _can_switch(bounds[0] + 1, bounds[0]):
            log.error(
                "workers stay root (without capabilities) instead of getting a uid each: "
                "this process cannot switch to uid %d (a user namespace that does not map "
                'worker_uids?); set worker_uids to a mapped range, or to "off"',
                bounds[0] + 1,
            )
            return
        library = _go_library_folder()
        if library is not None and (closed := closed_directory(library)) is not None:
            log.error(
                "workers stay root (without capabilities) instead of getting a uid each: "
                "%s is closed to other users, and a worker loads neonize's Go library from "
                '%s after it switches uid (chmod o+x it, or set worker_uids = "off")',
                closed,
                library,
            )
            return
        python = Path(sysconfig.get_path("stdlib"))
        if (closed := closed_directory(python)) is not None:
            log.warning(
                "%s is closed to other users: workers import what they need before they "
                "switch uid, and a module imported later would fail (chmod o+x it)",
                closed,
            )
        self.group = bounds[0]
        self._free = list(range(bounds[0] + 1, bounds[1] + 1))
        # Folders keep their uid, and no new session may get a uid that owns one.
        sessions = data_dir / "sessions"
        for folder in sorted(sessions.iterdir()) if sessions.is_dir() else []:
            owner = folder.stat().st_uid
            if folder.is_dir() and owner in self._free:
                self._free.remove(owner)
                self._assigned[folder.name] = owner

    @property
    def enabled(self) -> bool:
        return self.group is not None

    def share(self, path: Path, mode: int) -> None:
        """Give the workers' group ``mode`` on ``path`` (root stays the owner)."""
        if self.group is not None:
            os.chown(path, 0, self.group)
            os.chmod(path, mode)

    def run_as(self, session_id: str, folder: Path) -> p.RunAs | None:
        """The identity of the session's next worker, its folder handed over to it."""
        if self.group is None:
            return None
        uid = self._assigned.get(session_id)
        if uid is None:
            owner = os.stat(folder).st_uid
            uid = owner if owner in self._free else self._free[0] if self._free else None
            if uid is None:
                raise RuntimeError("worker_uids has no uid left for another session")
            self._free.remove(uid)
            self._assigned[session_id] = uid
        _hand_over(folder, uid)
        return p.RunAs(uid=uid, gid=uid, groups=[self.group])

    def release(self, session_id: str) -> None:
        """The session is deleted: its uid may serve another."""
        uid = self._assigned.pop(session_id, None)
        if uid is not None:
            self._free.append(uid)
            self._free.sort()


def _hand_over(folder: Path, uid: int) -> None:
    """Make ``folder`` and everything in it the uid's (files the gateway or an operator
    created there as root included); entries that already are cost one stat each."""
    os.chmod(folder, 0o700)
    for root, dirs, files in os.walk(folder):
        for name in [".", *dirs, *files]:
            path = os.path.join(root, name)
            info = os.lstat(path)
            if info.st_uid != uid or info.st_gid != uid:
                os.lchown(path, uid, uid)
