"""A PgBouncer of a test's (or benchmark's) own, configured as shipped.

The config is ``config/pgbouncer/pgbouncer.ini`` with only what a test must change: its
database, a free port, files in a temp folder and the server-connection caps; its auth
user is made by ``config/pgbouncer/auth.sql`` under a name of its own (roles are shared
by every database of the server). Never the system's service.
"""

from __future__ import annotations

import configparser
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from tests.procs import ROOT, free_port, wait_until

SHIPPED = ROOT / "config" / "pgbouncer"
#: PgBouncer refuses to run as root; started as root, it drops to this user.
UNPRIVILEGED = "nobody"


def binary() -> str | None:
    """Debian's pgbouncer (``make install-test`` installs it), in /usr/sbin."""
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")


class PgBouncer:
    """PgBouncer in front of the database ``database_url`` names, on a free port."""

    def __init__(
        self, database_url: str, max_db_connections: int, default_pool_size: int = 2
    ) -> None:
        self.database_url = database_url
        self.database = urlsplit(database_url).path.lstrip("/")
        self.max_db_connections = max_db_connections
        self.default_pool_size = default_pool_size
        self.port = free_port()
        self.auth_user = f"gowa_pgbouncer_{secrets.token_hex(4)}"
        self.auth_password = secrets.token_hex(16)
        self.folder = Path(tempfile.mkdtemp(prefix="gowa-pgbouncer-"))
        self.log_path = self.folder / "pgbouncer.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where workers log in (their role and password go in front of the host)."""
        return f"postgresql://127.0.0.1:{self.port}/{self.database}"

    def _config(self, password: str) -> str:
        server = urlsplit(self.database_url)
        ini = configparser.ConfigParser(interpolation=None, strict=True)
        ini.optionxform = str  # type: ignore[assignment,method-assign]
        ini.read(SHIPPED / "pgbouncer.ini")
        ini.remove_section("databases")
        ini.add_section("databases")
        ini["databases"][self.database] = (
            f"host={server.hostname or '127.0.0.1'} port={server.port or 5432} "
            f"dbname={self.database} auth_user={self.auth_user}"
        )
        settings = ini["pgbouncer"]
        settings["listen_port"] = str(self.port)
        settings["logfile"] = str(self.log_path)
        settings["pidfile"] = str(self.folder / "pgbouncer.pid")
        settings["auth_file"] = str(self.folder / "userlist.txt")
        settings["auth_user"] = self.auth_user
        settings["max_db_connections"] = str(self.max_db_connections)
        settings["default_pool_size"] = str(self.default_pool_size)
        (self.folder / "userlist.txt").write_text(f'"{self.auth_user}" "{password}"\n')
        path = self.folder / "pgbouncer.ini"
        with path.open("w") as out:
            ini.write(out)
        return str(path)

    def start(self) -> PgBouncer:
        program = binary()
        assert program, "pgbouncer is not installed (make install-test installs it)"
        password = self.auth_password
        subprocess.run(
            [
                "psql",
                self.database_url,
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-v",
                f"auth_user={self.auth_user}",
                "-v",
                f"auth_password='{password}'",
                "-f",
                str(SHIPPED / "auth.sql"),
            ],
            check=True,
            capture_output=True,
        )
        config = self._config(password)
        command = [program, config]
        if os.geteuid() == 0:
            user = pwd.getpwnam(UNPRIVILEGED)
            for path in (self.folder, *self.folder.iterdir()):
                os.chown(path, user.pw_uid, user.pw_gid)
            command = [program, "-u", UNPRIVILEGED, config]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_until(self._listening, 10, what=f"pgbouncer on :{self.port} ({self.log_path})")
        return self

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"pgbouncer exited: {self.log_path.read_text()}")
        return "listening on" in self.log_path.read_text() if self.log_path.exists() else False

    def auth_user_url(self) -> str:
        """The database's URL logging in directly as PgBouncer's auth user."""
        parts = urlsplit(self.database_url)
        host = parts.netloc.rpartition("@")[2]
        return parts._replace(netloc=f"{self.auth_user}:{self.auth_password}@{host}").geturl()

    def server_connections(self) -> int:
        """Connections PgBouncer holds to the server for the sessions' roles."""
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = %s AND usename LIKE 'gowa\\_r\\_%%'",
                [self.database],
            ).fetchone()
        return int(row[0]) if row else 0

    def stop(self) -> None:
        """Stop PgBouncer, drop its auth user and remove its folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # a fast shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS pgbouncer CASCADE")
            found = "SELECT 1 FROM pg_roles WHERE rolname = %s"
            if conn.execute(found, [self.auth_user]).fetchone():
                role = sql.Identifier(self.auth_user)
                conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
                conn.execute(sql.SQL("DROP ROLE {}").format(role))
        shutil.rmtree(self.folder, ignore_errors=True)
