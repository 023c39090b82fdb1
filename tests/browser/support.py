"""Helpers for the browser tests: the sandbox process, Chromium's flags, screenshots."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from tests.procs import GOWA, ROOT, Http, free_port, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "tests" / "artifacts"


class Sandbox:
    """``gowa sim serve`` on a free port, in its own process group."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = Http(self.url)
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"sim-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Sandbox:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*GOWA, "sim", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        wait_until(self._healthy, 30, what=f"sandbox on :{self.port} ({self.log_path})")
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"sandbox exited: {self.log_path.read_text()[-3000:]}")
        try:
            status, _ = self.http.get("/sim/healthz", timeout=2)
        except OSError:
            return False
        return status == 200

    def healthy(self) -> bool:
        try:
            return self._healthy()
        except AssertionError:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path
