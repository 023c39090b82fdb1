"""What one node holds: N connected sandbox sessions on one gateway (SQLite storage).

    python scripts/bench_node.py --sessions 100
    python scripts/bench_node.py --sessions 300 --unmerge       # + the same without KSM
    python scripts/bench_node.py --sessions 1000 --ksm-pages 5000

Pairs N sessions through a sandbox (10 at a time, pausing while available memory is
under ``--min-free-gb`` + ``--pair-margin-gb``, so ksmd can catch up), waits until all
are ``CONNECTED`` and, with ``--ksm auto`` (the gateway's default), until ksmd has
merged what it will (two full scans in a row that change the workers' merged pages by
less than 1 %; read from ``/proc/<pid>/ksm_merging_pages``, as the host's counters also
count other gateways' workers). Then, in this order:

* **memory**: RSS, PSS and USS (psutil ``memory_full_info``) of the gateway, the zygote
  and every worker, median of three readings by total PSS; marginal PSS per session =
  (PSS of gateway + zygote + workers now - the same before the first session) / N; the
  workers' merged pages and the host's KSM counters (``pages_shared``: merged pages
  kept, ``pages_sharing``: pages that point at them, i.e. saved);
* **idle CPU** over ``--idle`` seconds with no request: gateway, zygote, all workers
  together, the sandbox and ksmd, in % of one core (CPU time from /proc), ksmd at the
  host's scan rate (``pages_to_scan`` as found, 1000 when the gateway started ksmd);
* **GET latency under a light load**: an open loop of ``--rate`` requests per second in
  all over 4 keep-alive connections for ``--get-seconds`` s, first ``GET /api/sessions``
  (every session, ~1 KB of JSON each), then ``GET /api/sessions/{id}`` for ids in turn;
  latency counts from when a request was due (a request that waited counts the wait);
* ``--unmerge`` (with ``--ksm auto``): ``2`` written to ``/sys/kernel/mm/ksm/run``, which
  splits every merged page again (the host's, not only these workers'), and the memory
  read once more: the same sessions without KSM. Skipped when the pages it would add
  leave less than ``--min-free-gb`` of available memory;
* **restart**: SIGTERM to the gateway (the time until it has exited and its workers
  with it), then a new gateway on the same data folder; the time from its launch until
  it answers ``/readyz`` and until all N sessions are ``CONNECTED`` again (polling
  ``GET /api/sessions`` every 0.25 s), with no QR scan, and the memory at that moment
  (new workers, not merged yet).

``--ksm-pages P`` makes ksmd scan P pages per batch (every 20 ms) for the whole run but
the idle CPU window: at the gateway's 1000, a full scan of 1000 workers takes minutes,
and ksmd merged the workers of a pairing or a restart slower than they came up.
``--ksmd-nice N`` runs ksmd at that nice value meanwhile (the kernel starts it at 5): on
a machine whose cores other work keeps busy, ksmd at 5 falls behind the workers it
should merge. Available memory is watched throughout (its lowest per phase is in the
results), and the gateway's ``start_min_available_mb`` is set to ``--min-free-gb`` +
``--pair-margin-gb``, so the gateway holds new workers before this gives up.

Limits are read first and reported: open files of this shell (the gateway inherits
them), ``pid_max`` and ``threads-max`` (every worker's threads count against them); the
gateway's ``max_sessions`` is raised to N when N is over its default 1000. The run stops
(and kills everything) when available memory falls under ``--min-free-gb``. ksmd's
``run`` is put back as it was found at the end (the gateway starts it when it is
stopped). The load average is recorded with the figures: the two cores may be shared.
Results: a table on stdout and ``bench-results/node-*.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
from benchlib import (
    MB,
    Api,
    HttpError,
    KeepAliveConnection,
    Memory,
    Stack,
    machine,
    memory,
    percentile,
    phone_number,
    session_ids,
    table,
    write_result,
)

from gowa_py.supervisor import ksm

SUMMARY = [
    "sessions",
    "ksm",
    "marginal_pss_mb",
    "worker_pss_mb",
    "worker_uss_mb",
    "worker_rss_mb",
    "gateway_rss_mb",
    "gateway_pss_mb",
    "all_pss_gb",
    "idle_gateway_cpu_pct",
    "idle_workers_cpu_pct",
    "idle_ksmd_cpu_pct",
    "list_p95_ms",
    "one_p95_ms",
    "restart_all_connected_s",
]


class MemoryWatch(threading.Thread):
    """Available memory every half second: the lowest of each phase, and a SIGTERM to this
    process when it falls under the floor (Stack turns that into an exit that kills
    everything it started)."""

    def __init__(self, floor_gb: float) -> None:
        super().__init__(daemon=True)
        self.floor_gb = floor_gb
        self.phase = "start"
        self.lowest: dict[str, float] = {}
        self.tripped = ""
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(0.5):
            available = psutil.virtual_memory().available / 1024**3
            self.lowest[self.phase] = round(min(self.lowest.get(self.phase, 1e9), available), 1)
            if available < self.floor_gb and not self.tripped:
                self.tripped = f"{available:.1f} GB available in {self.phase}: stopped"
                os.kill(os.getpid(), signal.SIGTERM)

    def stop(self) -> None:
        self._stop.set()


def _limits() -> dict[str, Any]:
    def read(path: str) -> str:
        try:
            return Path(path).read_text().strip()
        except OSError:
            return "?"

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {
        "nofile_soft": soft,
        "nofile_hard": hard,
        "pid_max": read("/proc/sys/kernel/pid_max"),
        "threads_max": read("/proc/sys/kernel/threads-max"),
        "ksm_run_before": read("/sys/kernel/mm/ksm/run"),
        "ksm_pages_to_scan_before": read("/sys/kernel/mm/ksm/pages_to_scan"),
    }


def _ksmd() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if p.info["name"] == "ksmd"]


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


Reading = tuple[int, dict[str, list[Memory]], int]


def _read_memory(stack: Stack) -> Reading:
    """Total PSS, the readings by kind, the workers' merged pages."""
    tree = stack.gateway_tree()
    parts = {kind: memory(procs) for kind, procs in tree.items()}
    total = sum(m.pss for group in parts.values() for m in group)
    return total, parts, _merging_pages(tree["worker"])


def _settled_memory(stack: Stack, samples: int = 3) -> Reading:
    """The median of a few readings, by total PSS."""
    readings = []
    for _ in range(samples):
        readings.append(_read_memory(stack))
        time.sleep(1)
    readings.sort(key=lambda r: r[0])
    return readings[len(readings) // 2]


def _memory_row(
    total: int, base: int, parts: dict[str, list[Memory]], n: int, merged: int
) -> dict[str, Any]:
    workers = parts["worker"]
    count = max(1, len(workers))
    counters = ksm.counters()
    return {
        "workers": len(workers),
        "marginal_pss_mb": round((total - base) / n / MB, 2),
        "worker_pss_mb": round(sum(m.pss for m in workers) / count / MB, 2),
        "worker_uss_mb": round(sum(m.uss for m in workers) / count / MB, 2),
        "worker_rss_mb": round(sum(m.rss for m in workers) / count / MB, 2),
        "workers_pss_total_mb": round(sum(m.pss for m in workers) / MB, 1),
        "workers_rss_total_mb": round(sum(m.rss for m in workers) / MB, 1),
        "gateway_rss_mb": round(sum(m.rss for m in parts["gateway"]) / MB, 1),
        "gateway_pss_mb": round(sum(m.pss for m in parts["gateway"]) / MB, 1),
        "zygote_pss_mb": round(sum(m.pss for m in parts["zygote"]) / MB, 1),
        "all_pss_gb": round(total / 1024**3, 2),
        "ksm_workers_merging_pages": merged,
        "ksm_pages_shared": counters.get("pages_shared"),
        "ksm_pages_sharing": counters.get("pages_sharing"),
        "available_gb": round(psutil.virtual_memory().available / 1024**3, 1),
    }


def _merging_pages(processes: list[psutil.Process]) -> int:
    """Pages of these processes that ksmd has merged (``/proc/<pid>/ksm_merging_pages``):
    the host-wide counters also count other gateways' workers."""
    total = 0
    for process in processes:
        with contextlib.suppress(OSError, ValueError):
            total += int(Path(f"/proc/{process.pid}/ksm_merging_pages").read_text())
    return total


def _scan_rate(pages: str) -> None:
    with contextlib.suppress(OSError):
        (ksm.SYSFS / "pages_to_scan").write_text(pages)


def _wait_for_merging(stack: Stack, timeout: float) -> dict[str, Any]:
    """With ksmd running: until two full scans in a row change the workers' merged pages
    by < 1 %."""
    if not ksm.running():
        return {"ksm_settled": False, "ksm_wait_s": 0.0}
    began = time.monotonic()
    workers = stack.gateway_tree()["worker"]
    scans, merged = ksm.counters().get("full_scans", 0), _merging_pages(workers)
    steady = 0
    while steady < 2 and time.monotonic() - began < timeout:
        time.sleep(2)
        if ksm.counters().get("full_scans", 0) == scans:
            continue
        current = _merging_pages(workers)
        steady = steady + 1 if abs(current - merged) <= 0.01 * max(merged, 1) else 0
        scans, merged = ksm.counters().get("full_scans", 0), current
        print(f"  ksm: {merged * 4096 / MB:.0f} MB of the workers merged, scan {scans}", flush=True)
    return {"ksm_settled": steady >= 2, "ksm_wait_s": round(time.monotonic() - began, 1)}


def _idle_cpu(stack: Stack, seconds: float, host_pages: str, pages: int | None) -> dict[str, float]:
    """CPU over ``seconds``, with ksmd at the host's scan rate (the gateway's when it
    started ksmd) rather than the benchmark's ``--ksm-pages``."""
    _scan_rate(host_pages)
    try:
        return _cpu_over(stack, seconds)
    finally:
        if pages:
            _scan_rate(str(pages))


def _cpu_over(stack: Stack, seconds: float) -> dict[str, float]:
    tree = stack.gateway_tree()
    groups = {
        "gateway": tree["gateway"],
        "zygote": tree["zygote"],
        "workers": tree["worker"],
        "sandbox": [psutil.Process(p.pid) for p in stack.processes[:1]],
        "ksmd": _ksmd(),
    }
    before = {name: _cpu_seconds(procs) for name, procs in groups.items()}
    began = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - began
    return {
        f"idle_{name}_cpu_pct": round(100 * (_cpu_seconds(procs) - before[name]) / elapsed, 2)
        for name, procs in groups.items()
    }


async def _light_get(url: str, paths: list[str], rate: float, seconds: float) -> dict[str, Any]:
    """Open loop: request i due at i / rate s on connection i mod 4, latency from then."""
    parsed = urlsplit(url)
    connections = [KeepAliveConnection(parsed.hostname or "", parsed.port or 80) for _ in range(4)]
    await asyncio.gather(*(c.connect() for c in connections))
    latencies: list[float] = []
    errors = 0
    sizes: list[int] = []
    began = time.perf_counter()
    deadline = began + seconds

    async def client(k: int, connection: KeepAliveConnection) -> None:
        nonlocal errors
        n = 0
        while True:
            due = began + (k + n * len(connections)) / rate
            if due >= deadline:
                return
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            path = paths[(k + n * len(connections)) % len(paths)]
            n += 1
            try:
                status, body = await connection.request("GET", path)
            except (HttpError, OSError) as exc:
                status, body = 0, str(exc).encode()
            latencies.append(time.perf_counter() - due)
            sizes.append(len(body))
            if status != 200:
                errors += 1

    try:
        await asyncio.gather(*(client(k, c) for k, c in enumerate(connections)))
    finally:
        for connection in connections:
            connection.close()
    ms = [value * 1000 for value in latencies]
    return {
        "requests": len(ms),
        "errors": errors,
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms, default=0.0), 2),
        "answer_kb": round(sum(sizes) / max(1, len(sizes)) / 1024, 1),
    }


async def _statuses(api: Api) -> dict[str, str]:
    status, body = await api.gw("GET", "/api/sessions")
    if status != 200:
        return {}
    return {s["id"]: s["status"] for s in body["results"]}


async def _pair_all(stack: Stack, ids: list[str], parallel: int, low_gb: float) -> float:
    """Pair ``ids``; a pairing waits while available memory is under ``low_gb`` (ksmd
    merges the newest workers meanwhile). Returns the seconds spent waiting."""
    waited = 0.0
    async with Api(stack.gateway_url, stack.sandbox_url) as api:
        slots = asyncio.Semaphore(parallel)
        done = 0
        began = time.monotonic()

        async def one(n: int, sid: str) -> None:
            nonlocal done, waited
            async with slots:
                while psutil.virtual_memory().available < low_gb * 1024**3:
                    await asyncio.sleep(1)
                    waited += 1
                await api.pair(sid, phone_number(n), timeout=300)
            done += 1
            if done % 50 == 0 or done == len(ids):
                print(
                    f"  {done} paired, {time.monotonic() - began:.0f} s, "
                    f"{psutil.virtual_memory().available / 1024**3:.1f} GB available",
                    flush=True,
                )

        await asyncio.gather(*(one(n, sid) for n, sid in enumerate(ids)))
    return waited


async def _wait_all_connected(stack: Stack, ids: list[str], began: float, timeout: float) -> float:
    """Seconds from ``began`` until every one of ``ids`` is ``CONNECTED``."""
    wanted = set(ids)
    async with Api(stack.gateway_url, None) as api:
        while time.monotonic() - began < timeout:
            statuses = await _statuses(api)
            if all(statuses.get(sid) == "CONNECTED" for sid in wanted):
                return time.monotonic() - began
            await asyncio.sleep(0.25)
        statuses = await _statuses(api)
    missing = [sid for sid in ids if statuses.get(sid) != "CONNECTED"]
    raise TimeoutError(f"{len(missing)} not CONNECTED after {timeout} s: {missing[:5]}")


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie (the gateway's workers are reaped by whoever adopts them)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _restart(stack: Stack, ids: list[str], timeout: float, watch: MemoryWatch) -> dict[str, Any]:
    """SIGTERM, wait for the gateway and its workers to exit, start it again, time it."""
    assert stack.gateway is not None
    tree = stack.gateway_tree()
    children = [*tree["zygote"], *tree["worker"]]
    began = time.monotonic()
    stack.gateway.send_signal(signal.SIGTERM)
    stack.gateway.wait(timeout)
    while alive := [c for c in children if _alive(c)]:
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"{len(alive)} processes outlived the gateway's SIGTERM")
        time.sleep(0.1)
    stopped_s = time.monotonic() - began
    watch.phase = "restart"
    launched = time.monotonic()
    stack.start_gateway()
    ready_s = time.monotonic() - launched
    connected_s = asyncio.run(_wait_all_connected(stack, ids, launched, timeout))
    total, parts, merged = _read_memory(stack)
    return {
        "restart_stop_s": round(stopped_s, 2),
        "restart_ready_s": round(ready_s, 2),
        "restart_all_connected_s": round(connected_s, 2),
        # Memory when the last one is back: the new workers have not been merged yet.
        "restart_pss_gb": round(total / 1024**3, 2),
        "restart_ksm_merged_mb": round(merged * 4096 / MB),
        "restart_worker_uss_mb": round(
            sum(m.uss for m in parts["worker"]) / max(1, len(parts["worker"])) / MB, 2
        ),
    }


def _unmerge(stack: Stack, base: int, n: int, min_free_gb: float) -> dict[str, Any]:
    """Split every merged page (``run = 2``) and read the memory again."""
    saved = (ksm.counters().get("pages_sharing") or 0) * 4096
    available = psutil.virtual_memory().available
    if available - saved < min_free_gb * 1024**3:
        return {"skipped": f"unmerging adds {saved / 1024**3:.1f} GB of {available / 1024**3:.1f}"}
    began = time.monotonic()
    Path("/sys/kernel/mm/ksm/run").write_text("2")
    unmerge_s = time.monotonic() - began
    time.sleep(5)
    total, parts, merged = _settled_memory(stack)
    return {**_memory_row(total, base, parts, n, merged), "unmerge_s": round(unmerge_s, 1)}


def _run(
    stack: Stack, args: argparse.Namespace, result: dict[str, Any], watch: MemoryWatch
) -> None:
    ids = session_ids(args.sessions)
    stack.start_sandbox()
    stack.start_gateway()
    time.sleep(3)
    base = _settled_memory(stack)[0]
    result["base_pss_mb"] = round(base / MB, 1)

    watch.phase = "pairing"
    began = time.monotonic()
    low_gb = args.min_free_gb + args.pair_margin_gb
    result["pair_memory_wait_s"] = asyncio.run(_pair_all(stack, ids, args.parallel, low_gb))
    result["pair_s"] = round(time.monotonic() - began, 1)
    tree = stack.gateway_tree()
    result["worker_threads"] = sum(p.num_threads() for p in tree["worker"])
    result["gateway_fds"] = tree["gateway"][0].num_fds()
    result["sandbox_fds"] = psutil.Process(stack.processes[0].pid).num_fds()
    watch.phase = "connected"
    if args.ksm != "off":
        result.update(_wait_for_merging(stack, args.ksm_wait))
    time.sleep(args.settle)
    total, parts, merged = _settled_memory(stack)
    result.update(_memory_row(total, base, parts, args.sessions, merged))
    print(table([result], SUMMARY[:9]), flush=True)

    host_pages = result["limits"]["ksm_pages_to_scan_before"]
    result.update(_idle_cpu(stack, args.idle, host_pages, args.ksm_pages))
    print(f"  idle CPU: { {k: v for k, v in result.items() if k.startswith('idle_')} }")

    paths = {"list": ["/api/sessions"], "one": [f"/api/sessions/{sid}" for sid in ids]}
    for name, route_paths in paths.items():
        row = asyncio.run(_light_get(stack.gateway_url, route_paths, args.rate, args.get_seconds))
        result.update({f"{name}_{key}": value for key, value in row.items()})
        print(f"  GET {name}: {row}", flush=True)

    if args.unmerge and args.ksm != "off":
        result["unmerged"] = _unmerge(stack, base, args.sessions, args.min_free_gb)
        print(f"  without KSM: {result['unmerged']}", flush=True)

    result.update(_restart(stack, ids, args.restart_timeout, watch))
    print(
        f"  restart: stop {result['restart_stop_s']} s, ready {result['restart_ready_s']} s, "
        f"all CONNECTED {result['restart_all_connected_s']} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--ksm", choices=["auto", "off"], default="auto")
    parser.add_argument("--unmerge", action="store_true", help="also read memory without KSM")
    parser.add_argument("--parallel", type=int, default=10, help="sessions paired at once")
    parser.add_argument(
        "--pair-margin-gb",
        type=float,
        default=2.0,
        help="pairing pauses under --min-free-gb plus this much available memory",
    )
    parser.add_argument("--settle", type=float, default=15.0, help="idle seconds before reading")
    parser.add_argument("--ksm-wait", type=float, default=900.0, help="longest wait for ksmd (s)")
    parser.add_argument(
        "--ksm-pages", type=int, help="ksmd's pages_to_scan, but for the idle CPU window"
    )
    parser.add_argument("--ksmd-nice", type=int, help="ksmd's nice value for the run")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle CPU measured")
    parser.add_argument("--rate", type=float, default=20.0, help="GET requests per second")
    parser.add_argument("--get-seconds", type=float, default=30.0, help="seconds per GET route")
    parser.add_argument("--restart-timeout", type=float, default=600.0)
    parser.add_argument("--min-free-gb", type=float, default=3.0)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway")
    args = parser.parse_args()

    # The gateway holds worker starts (a pairing's, a restart's) above the floor at which
    # this benchmark gives up.
    reserve_mb = (args.min_free_gb + args.pair_margin_gb) * 1024
    env = {"GOWA_KSM": args.ksm, "GOWA_RATE_LIMIT": "0"}
    env["GOWA_START_MIN_AVAILABLE_MB"] = str(reserve_mb)
    if args.sessions > 1000:
        env["GOWA_MAX_SESSIONS"] = str(args.sessions)
    env.update(dict(e.split("=", 1) for e in args.env))
    limits = _limits()
    result: dict[str, Any] = {"sessions": args.sessions, "ksm": args.ksm, "limits": limits}
    result["load_before"] = [round(x, 2) for x in os.getloadavg()]
    if args.sessions > limits["nofile_soft"] // 4:
        raise SystemExit(f"open files limit {limits['nofile_soft']} is low for this many")
    meta = {"machine": machine(), "command": " ".join(["python", *sys.argv]), **vars(args)}
    watch = MemoryWatch(args.min_free_gb)
    watch.start()
    if args.ksm_pages:
        _scan_rate(str(args.ksm_pages))
    ksmd_nice = {p: p.nice() for p in _ksmd()}
    if args.ksmd_nice is not None:
        for process in ksmd_nice:
            process.nice(args.ksmd_nice)
    try:
        with Stack(gateway_env=env) as stack:
            _run(stack, args, result, watch)
    except SystemExit:
        if not watch.tripped:
            raise
        result["aborted"] = watch.tripped
        print(watch.tripped, file=sys.stderr)
    except Exception as exc:  # what was measured before it is still written
        result["aborted"] = repr(exc)
        traceback.print_exc()
    finally:
        watch.stop()
        result["lowest_available_gb"] = watch.lowest
        _scan_rate(limits["ksm_pages_to_scan_before"])
        for process, nice in ksmd_nice.items():
            process.nice(nice)
        with contextlib.suppress(OSError):
            if limits["ksm_run_before"] in ("0", "1"):
                Path("/sys/kernel/mm/ksm/run").write_text(limits["ksm_run_before"])
        result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(table([result], SUMMARY))
    print(json.dumps({k: v for k, v in result.items() if k != "unmerged"}, indent=1))
    print("written to", write_result("node", result, meta))


if __name__ == "__main__":
    main()
