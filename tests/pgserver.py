"""A throwaway PostgreSQL server of one test's own, for faults the shared server must
not suffer (a restart would break every other test running against it).

Debian's PostgreSQL 15 binaries, a data dir in a fresh temporary folder, a free port on
loopback, trust auth, no Unix socket outside that folder, and as many connections as
asked (a running session holds about 3, docs/storage.md: 30 sessions do not fit in the
shared server's default 100 beside the other tests). PostgreSQL refuses to run as
root, so under root the server runs as the ``postgres`` system user (``runuser``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.procs import free_port

BIN = Path(os.environ.get("GOWA_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PgServer:
    """``initdb`` + ``pg_ctl`` in a temporary folder; :meth:`restart` under load."""

    def __init__(self, max_connections: int = 100) -> None:
        self.max_connections = max_connections
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="gowa-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=120)
        if done.returncode:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}\n{tail}")

    def init(self) -> PgServer:
        self._run(
            str(BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"
        )
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            f"-c max_connections={self.max_connections} -c fsync=off -c full_page_writes=off"
        )
        self._run(
            str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every connection (a restart); ``immediate`` is a crash."""
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)
