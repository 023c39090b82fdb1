"""Process helpers for the sandbox integration tests: the sandbox and real neonize clients."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CLIENT_SCRIPT = Path(__file__).with_name("neonize_client.py")
WAIT = 15.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _reader(stream, sink: queue.Queue, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)
        sink.put(line)
    sink.put(None)


class SandboxProcess:
    """``python -m gowa_py.sim`` on a free loopback port, restartable on the same port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gowa_py.sim",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue = queue.Queue()
        threading.Thread(
            target=_reader, args=(self.proc.stderr, lines, self.log), daemon=True
        ).start()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            if line is None:
                break
            match = re.search(r"sandbox listening on http://127\.0\.0\.1:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                return
        raise RuntimeError("sandbox did not start:\n" + "".join(self.log))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with _NO_PROXY.open(request, timeout=WAIT) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def info(self) -> dict[str, Any]:
        status, info = self.api("GET", "/sim/info")
        assert status == 200, info
        return info


class NeonizeClient:
    """One ``neonize_client.py`` subprocess; events are JSON lines on its stdout."""

    def __init__(self, sim: SandboxProcess, db: Path, *, patch: bool = True) -> None:
        info = sim.info()
        args = [
            sys.executable,
            str(CLIENT_SCRIPT),
            "--db",
            str(db),
            "--proxy",
            info["proxy"],
            "--ca",
            str(sim.data_dir / "ca.pem"),
            "--root-key",
            info["root_key"],
        ]
        if not patch:
            args.append("--no-patch")
        env = {k: v for k, v in os.environ.items() if k not in ("HTTP_PROXY", "HTTPS_PROXY")}
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.events: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(
            target=_reader, args=(self.proc.stdout, self._lines, []), daemon=True
        ).start()
        threading.Thread(
            target=_reader, args=(self.proc.stderr, queue.Queue(), self.stderr), daemon=True
        ).start()

    def _pump(self, timeout: float) -> bool:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return True
        if line is None:
            return False
        if line.startswith("{"):
            self.events.append(json.loads(line))
        return True

    def wait(self, event: str, timeout: float = WAIT, **match: Any) -> dict[str, Any]:
        """The first event (seen so far or arriving in time) with this name and fields."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for ev in self.events[seen:]:
                if ev["event"] == event and all(ev.get(k) == v for k, v in match.items()):
                    ev["_consumed"] = True
                    return ev
            seen = len(self.events)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._pump(min(remaining, 0.2)):
                if remaining > 0 and self.proc.poll() is None:
                    continue
                raise AssertionError(
                    f"no {event} {match} within {timeout}s; events: {self.events}\n"
                    + "".join(self.stderr[-20:])
                )

    def fresh(self, event: str, timeout: float = WAIT, **match: Any) -> dict[str, Any]:
        """Like :meth:`wait`, but ignores events already consumed by earlier waits."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if (
                    ev["event"] == event
                    and not ev.get("_consumed")
                    and all(ev.get(k) == v for k, v in match.items())
                ):
                    ev["_consumed"] = True
                    return ev
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no new {event} {match} within {timeout}s: {self.events}")
            self._pump(min(remaining, 0.2))

    def command(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def has(self, event: str) -> bool:
        return any(ev["event"] == event for ev in self.events)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def pair(sim: SandboxProcess, phone: str, db: Path) -> NeonizeClient:
    """Start a fresh client, scan its QR as ``phone`` and wait for Connected."""
    client = NeonizeClient(sim, db)
    qr = client.wait("qr")["qr"]
    status, body = sim.api("POST", f"/sim/phones/{phone}/scan", {"qr": qr})
    assert status == 200, body
    client.wait("connected")
    return client
