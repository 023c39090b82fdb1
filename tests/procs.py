"""Real processes for integration tests: free ports, a gateway and its workers, cleanup."""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from gowa_py.ipc import runtime_dir

ROOT = Path(__file__).resolve().parent.parent
GOWA = [sys.executable, "-m", "gowa_py"]
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: Seeded from the OS: each pytest-xdist worker draws its own ports.
_ports = random.SystemRandom()


def free_port() -> int:
    """A free port for a process to bind later, drawn below the kernel's ephemeral range:
    a port that ``bind(0)`` hands out is one any outgoing connection (PostgreSQL, ZeroMQ,
    another test) may take as its own before the process binds it, which cost a gateway
    its port once in a loaded parallel run."""
    low = int(_PORT_RANGE.read_text().split()[0]) if _PORT_RANGE.exists() else 32768
    while True:
        port = _ports.randrange(max(1024, low - 16384), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def wait_until(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class Http:
    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.base = base
        self.headers = headers or {}

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        timeout: float = 30,
    ) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base + path, data=data, method=method)
        for key, value in {**self.headers, **(headers or {})}.items():
            request.add_header(key, value)
        if data is not None and "Content-Type" not in (headers or {}):
            request.add_header("Content-Type", "application/json")
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        try:
            return status, json.loads(payload)
        except ValueError:
            return status, payload

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.call("POST", path, body, **kw)


class Gateway:
    """``gowa serve`` as a subprocess on a free port with its own data dir."""

    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        command: list[str] | None = None,
        cwd: Path = ROOT,
        nofile: tuple[int, int] | None = None,
    ) -> None:
        """``command`` replaces ``python -m gowa_py`` (e.g. an installed ``gowa`` script);
        ``nofile`` is the (soft, hard) ``RLIMIT_NOFILE`` the gateway starts with."""
        self.data_dir = data_dir
        self.nofile = nofile
        self.command = command or GOWA
        self.cwd = cwd
        self.port = free_port()
        self.env = {**os.environ, "GOWA_LOG_LEVEL": "INFO", **(env or {})}
        self.args = args or []
        self.process: subprocess.Popen[bytes] | None = None
        self.http = Http(
            f"http://127.0.0.1:{self.port}",
            {"X-Api-Key": self.env["GOWA_API_KEY"]} if self.env.get("GOWA_API_KEY") else {},
        )
        self.log_path = data_dir.parent / f"gateway-{self.port}.log"

    def start(self, timeout: float = 30) -> Gateway:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                *self.command,
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                *self.args,
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
            start_new_session=True,
            preexec_fn=self._limit_files if self.nofile else None,
        )
        log.close()
        wait_until(self._ready, timeout, what=f"gateway on :{self.port} ready ({self.log_path})")
        return self

    def _limit_files(self) -> None:
        assert self.nofile is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, self.nofile)

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"gateway exited: {self.log_path.read_text()[-3000:]}")
        try:
            status, _ = self.http.get("/readyz", timeout=2)
        except OSError:
            return False
        return status == 200

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def session(self, session_id: str) -> dict[str, Any]:
        status, body = self.http.get(f"/api/sessions/{session_id}")
        assert status == 200, body
        return body["results"]

    def wait_status(self, session_id: str, statuses: set[str], timeout: float = 30) -> dict:
        """The session once its status is one of ``statuses``; a timeout names the last
        session JSON and the end of its worker's log, which say why it never got there."""
        seen: dict[str, Any] = {}

        def reached() -> dict[str, Any] | None:
            seen.update(self.session(session_id))
            return dict(seen) if seen["status"] in statuses else None

        try:
            return wait_until(reached, timeout, what=f"{session_id} in {statuses}")
        except AssertionError as exc:
            log = self.data_dir / "sessions" / session_id / "worker.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no worker.log)"
            raise AssertionError(f"{exc}\nsession: {seen}\nworker.log: {tail}") from None

    def wait_pid(self, session_id: str, timeout: float = 30, not_pid: int | None = None) -> int:
        def pid() -> int | None:
            value = self.session(session_id)["worker"]["pid"]
            return value if value and value != not_pid else None

        return wait_until(pid, timeout, what=f"worker pid of {session_id}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)

    def cleanup(self) -> None:
        """Kill the gateway and anything it left behind (the test then fails on its own)."""
        leftovers = self.descendants()
        self.stop(signal.SIGKILL, timeout=5)
        for process in leftovers + find_workers(self.data_dir):
            with contextlib.suppress(psutil.Error):
                process.kill()
        # A killed gateway cannot remove its socket folder in /tmp.
        shutil.rmtree(runtime_dir(self.data_dir), ignore_errors=True)


def find_workers(data_dir: Path) -> list[psutil.Process]:
    """Live worker processes whose session lives under ``data_dir``."""
    marker = str(data_dir.resolve())
    sessions = str((data_dir / "sessions").resolve()) + os.sep
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            environ = process.environ()
            # A worker forked by the zygote gets its config after exec, so /proc/<pid>/environ
            # does not show it; its cwd is its session folder.
            cwd = process.cwd()
        except (psutil.Error, OSError):
            continue
        ours = marker in environ.get("GOWA_WORKER_CONFIG", "") or cwd.startswith(sessions)
        if ours and process.status() != "zombie":
            found.append(process)
    return found
