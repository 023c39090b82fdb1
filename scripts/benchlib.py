"""What the benchmark scripts share: processes on free ports, pairing through the sandbox,
memory readings and result files.

Every process is started in its own process group and killed (group and all) on exit,
including Ctrl-C, so a benchmark never leaves a gateway, zygote or worker behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this repository's tests package, not one a dependency installed

from gowa_py.ipc import runtime_dir  # noqa: E402
from tests.backends import ScratchDatabase  # noqa: E402

RESULTS = ROOT / "bench-results"
GOWA = [sys.executable, "-m", "gowa_py"]
MB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation), 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def write_result(name: str, data: dict[str, Any] | list[Any], meta: dict[str, Any]) -> Path:
    """``bench-results/<name>-<timestamp>.json`` plus ``<name>-latest.json``.

    The file holds the result itself (a dict of figures, or a list of rows for the API); the
    machine and command go under ``"meta"`` in a dict, and beside a list in
    ``<name>-<timestamp>.meta.json``.
    """
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    files = {f"{name}-{stamp}.json", f"{name}-latest.json"}
    if isinstance(data, dict):
        body = json.dumps({**data, "meta": meta}, indent=2)
    else:
        body = json.dumps(data, indent=2)
        for meta_name in (f"{name}-{stamp}.meta.json", f"{name}-latest.meta.json"):
            (RESULTS / meta_name).write_text(json.dumps(meta, indent=2))
    for file_name in files:
        (RESULTS / file_name).write_text(body)
    return RESULTS / f"{name}-{stamp}.json"


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[_fmt(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(c[i]) for c in cells)) for i, col in enumerate(columns)]
    lines = ["  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) for cell in cells]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "" if value is None else str(value)


# ------------------------------------------------------------------ processes


def _open_workdir() -> Path:
    """A temporary folder other users may pass through, so a gateway running as root gives
    its workers a uid each (worker_uids), as it does in production."""
    folder = Path(tempfile.mkdtemp(prefix="gowa-bench-"))
    folder.chmod(0o711)
    return folder


@dataclass
class Stack:
    """The sandbox and a gateway (as subprocesses), in a temporary directory."""

    sandbox_url: str | None = None
    gateway_url: str = ""
    gateway_env: dict[str, str] = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: _open_workdir())
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    gateway: subprocess.Popen[bytes] | None = None
    data_dirs: list[Path] = field(default_factory=list)

    def _start(self, args: list[str], log_name: str, env: dict[str, str] | None = None) -> Any:
        log = (self.workdir / log_name).open("ab")
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes.append(process)
        return process

    def start_sandbox(self) -> str:
        port = free_port()
        self._start(
            [*GOWA, "sim", "serve", "--port", str(port), "--data-dir", str(self.workdir / "sim")],
            "sandbox.log",
        )
        self.sandbox_url = f"http://127.0.0.1:{port}"
        _wait_http(self.sandbox_url + "/sim/healthz", 30, self.workdir / "sandbox.log")
        return self.sandbox_url

    def start_gateway(
        self, extra: list[str] | None = None, name: str = "gw", env: dict[str, str] | None = None
    ) -> str:
        """A gateway with the data dir ``name`` (one per node of a cluster) and ``env``
        beside ``gateway_env``; the last one started is :attr:`gateway`."""
        port = free_port()
        self.data_dirs.append(self.workdir / name)
        args = [*GOWA, "serve", "--port", str(port), "--data-dir", str(self.workdir / name)]
        if self.sandbox_url:
            args += ["--sandbox", self.sandbox_url]
        # Benchmarks start more sessions without an account at once than max_pairing
        # lets through (tests/e2e/test_pairing_limit.py covers the cap).
        base = {
            "GOWA_LOG_LEVEL": "WARNING",
            "GOWA_WORKER_LOG_LEVEL": "WARNING",
            "GOWA_MAX_PAIRING": "0",
        }
        log = "gateway.log" if name == "gw" else f"gateway-{name}.log"
        self.gateway = self._start(
            args + (extra or []), log, {**base, **self.gateway_env, **(env or {})}
        )
        self.gateway_url = f"http://127.0.0.1:{port}"
        _wait_http(self.gateway_url + "/readyz", 60, self.workdir / log)
        return self.gateway_url

    def gateway_tree(self) -> dict[str, list[psutil.Process]]:
        """The gateway, its zygote(s) and its workers."""
        assert self.gateway is not None
        root = psutil.Process(self.gateway.pid)
        tree: dict[str, list[psutil.Process]] = {"gateway": [root], "zygote": [], "worker": []}
        for process in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if process.status() == psutil.STATUS_ZOMBIE:
                    continue
                if process.name() == "gowa-zygote":
                    tree["zygote"].append(process)
                else:
                    tree["worker"].append(process)
        return tree

    def close(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        # Workers forked by a zygote share its process group; anything left is ours.
        marker = str(self.workdir)
        for process in psutil.process_iter(["pid"]):
            with contextlib.suppress(psutil.Error):
                if process.cwd().startswith(marker):
                    process.kill()
        # A killed gateway could not remove its socket folder in /tmp.
        for data_dir in self.data_dirs:
            shutil.rmtree(runtime_dir(data_dir), ignore_errors=True)

    def __enter__(self) -> Stack:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close()
        if exc_type is None:  # after a failure, its logs stay for a look
            shutil.rmtree(self.workdir, ignore_errors=True)


def _wait_http(url: str, timeout: float, log: Path) -> None:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), opener.open(url, timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready after {timeout} s; see {log}")


def py_spy(pid: int, name: str, seconds: float) -> subprocess.Popen[bytes]:
    """Record ``pid`` with py-spy for ``seconds`` into ``bench-results/profile-<name>.txt``
    (collapsed stacks, one line per stack and its sample count)."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"profile-{name}.txt"
    args = ["py-spy", "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200"]
    args += ["-f", "raw", "-o", str(out), "--nonblocking"]
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '')}"}
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ------------------------------------------------------------------ memory


@dataclass(frozen=True)
class Memory:
    rss: int
    pss: int
    uss: int


def memory(processes: Iterable[psutil.Process]) -> list[Memory]:
    found = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            info = process.memory_full_info()
            found.append(Memory(info.rss, info.pss, info.uss))
    return found


def total_pss(readings: Iterable[Memory]) -> int:
    return sum(m.pss for m in readings)


# ------------------------------------------------------------------ sessions


class Api:
    """A small asynchronous client for the gateway and the sandbox."""

    def __init__(self, gateway_url: str, sandbox_url: str | None, connections: int = 100) -> None:
        self.gateway_url = gateway_url
        self.sandbox_url = sandbox_url
        self._connections = connections
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Api:
        connector = aiohttp.TCPConnector(limit=self._connections)
        self.http = aiohttp.ClientSession(
            connector=connector, trust_env=False, timeout=aiohttp.ClientTimeout(total=60)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.http is not None
        await self.http.close()

    async def call(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        assert self.http is not None
        async with self.http.request(method, url, json=body) as response:
            try:
                payload = await response.json(content_type=None)
            except ValueError:
                payload = None
            return response.status, payload

    async def gw(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return await self.call(method, self.gateway_url + path, body)

    async def sim(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        assert self.sandbox_url, "this step needs the sandbox"
        return await self.call(method, self.sandbox_url + path, body)

    async def status(self, session_id: str) -> str:
        status, body = await self.gw("GET", f"/api/sessions/{session_id}")
        return body["results"]["status"] if status == 200 else f"HTTP {status}"

    async def wait_status(
        self, session_id: str, wanted: set[str], timeout: float, interval: float = 0.02
    ) -> float:
        """Seconds until the session reaches one of ``wanted``."""
        started = time.monotonic()
        last = ""
        while time.monotonic() - started < timeout:
            last = await self.status(session_id)
            if last in wanted:
                return time.monotonic() - started
            await asyncio.sleep(interval)
        raise TimeoutError(f"{session_id} stayed {last}, not {wanted}, for {timeout} s")

    async def create(self, session_id: str, start: bool = True) -> None:
        status, body = await self.gw(
            "POST", "/api/sessions", {"session_id": session_id, "start": start}
        )
        if status != 201:
            raise RuntimeError(f"creating {session_id}: {status} {body}")

    async def wait_qr(self, session_id: str, timeout: float = 60) -> str:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            status, body = await self.gw("GET", f"/api/{session_id}/app/login")
            code = (body or {}).get("results") or {}
            if status == 200 and code.get("qr_code"):
                return str(code["qr_code"])
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no QR for {session_id} in {timeout} s")

    async def pair(self, session_id: str, phone: str, timeout: float = 120) -> None:
        """Create a phone and a session, scan the session's QR, wait for CONNECTED."""
        status, body = await self.sim(
            "POST", "/sim/phones", {"phone": phone, "push_name": f"Bench {session_id}"}
        )
        if status not in (200, 201):
            raise RuntimeError(f"creating phone {phone}: {status} {body}")
        await self.create(session_id)
        qr = await self.wait_qr(session_id, timeout)
        status, body = await self.sim("POST", f"/sim/phones/{phone}/scan", {"qr": qr})
        if status not in (200, 201):
            raise RuntimeError(f"scanning for {session_id}: {status} {body}")
        await self.wait_status(session_id, {"CONNECTED"}, timeout, interval=0.2)

    async def add_phones(self, phones: list[str]) -> None:
        """Create sandbox contacts that no session is linked to, each with a phone that is
        switched off: a linked device that never connects, so senders encrypt for it."""
        for phone in phones:
            status, body = await self.sim(
                "POST", "/sim/phones", {"phone": phone, "push_name": f"Contact {phone}"}
            )
            if status not in (200, 201):
                raise RuntimeError(f"creating phone {phone}: {status} {body}")
            status, body = await self.sim("POST", f"/sim/phones/{phone}/devices", {})
            if status != 201:
                raise RuntimeError(f"adding a device to {phone}: {status} {body}")

    async def pair_many(self, ids: list[str], parallel: int = 10) -> None:
        slots = asyncio.Semaphore(parallel)

        async def one(n: int, session_id: str) -> None:
            async with slots:
                await self.pair(session_id, phone_number(n))

        await asyncio.gather(*(one(n, sid) for n, sid in enumerate(ids)))


def phone_number(n: int) -> str:
    return f"5511{900000000 + n}"


def contact_number(n: int) -> str:
    """A sandbox phone that no session of the benchmark is linked to."""
    return f"5521{900000000 + n}"


def session_ids(count: int, prefix: str = "b") -> list[str]:
    return [f"{prefix}{n:03d}" for n in range(count)]


# ------------------------------------------------------------------ load generation


class HttpError(Exception):
    """The connection broke or the answer was not HTTP/1.1 as expected."""


class KeepAliveConnection(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection that sends a request and reads the whole answer.

    A load generator built on aiohttp's client spent ~250 µs of CPU per request, so at
    ~3000 req/s it used a full core and was what limited a closed-loop benchmark on two
    cores. This one only frames requests and answers (status line, headers,
    ``Content-Length`` or chunked body): the answer is complete when :meth:`request`
    returns, so a latency measured around it is still request sent -> full response read.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._head: tuple[int, int | None, bool] | None = None  # status, length, close
        self._made: asyncio.Future[None] | None = None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        self._made = loop.create_future()
        await loop.create_connection(lambda: self, self.host, self.port)
        # uvloop may call connection_made after create_connection returned.
        await self._made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        if self._made is not None and not self._made.done():
            self._made.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._made is not None and not self._made.done():
            self._made.set_exception(HttpError(f"connection lost: {exc}"))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(HttpError(f"connection lost: {exc}"))

    async def request(
        self, method: str, path: str, body: bytes | None = None, headers: str = ""
    ) -> tuple[int, bytes]:
        """``(status, body)``; ``headers`` is extra ``Name: value\r\n`` lines."""
        if self._transport is None or self._transport.is_closing():
            await self.connect()
        assert self._transport is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{headers}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self._buffer.clear()
        self._head = None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(head.encode() + b"\r\n" + (body or b""))
        try:
            status, data = await self._waiter
        finally:
            self._waiter = None
        return status, data

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is None or self._waiter.done():
            return
        try:
            answer = self._parse()
        except (ValueError, IndexError) as exc:
            self._waiter.set_exception(HttpError(f"malformed answer: {exc}"))
            if self._transport is not None:
                self._transport.close()
            return
        if answer is not None:
            self._waiter.set_result(answer)

    def _parse(self) -> tuple[int, bytes] | None:
        buffer = self._buffer
        if self._head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return None
            lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length, chunked, close = None, False, False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding":
                    chunked = "chunked" in value.lower()
                elif name == "connection":
                    close = value.strip().lower() == "close"
            if length is None and not chunked:
                raise ValueError("neither Content-Length nor chunked")
            del buffer[: end + 4]
            self._head = (status, None if chunked else length, close)
        status, length, close = self._head
        if length is not None:
            if len(buffer) < length:
                return None
            body = bytes(buffer[:length])
        else:
            body = self._dechunk(buffer)
            if body is None:
                return None
        if close and self._transport is not None:
            self._transport.close()
        return status, body

    @staticmethod
    def _dechunk(buffer: bytearray) -> bytes | None:
        parts, at = [], 0
        while True:
            end = buffer.find(b"\r\n", at)
            if end < 0:
                return None
            size = int(bytes(buffer[at:end]).split(b";", 1)[0], 16)
            if size == 0:
                return b"".join(parts) if buffer.find(b"\r\n\r\n", end) >= 0 else None
            start = end + 2
            if len(buffer) < start + size + 2:
                return None
            parts.append(bytes(buffer[start : start + size]))
            at = start + size + 2

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    box: list[float] = []
    started = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - started)


@contextlib.contextmanager
def scratch_database() -> Iterator[ScratchDatabase]:
    """A fresh ``gowa_bench_<random>`` database on the server at GOWA_TEST_DATABASE_URL
    (default: the local one), the tests' kind: dropped afterwards with its sessions'
    roles, however the benchmark ends."""
    database = ScratchDatabase("gowa_bench")
    try:
        yield database
    finally:
        database.drop()
