"""Memory per session: marginal PSS of the whole gateway (gateway + zygote + workers).

    python scripts/bench_memory.py --sessions 10 50 100             # connected, via a sandbox
    python scripts/bench_memory.py --sessions 50 --in-process       # ... and the one-process floor
    python scripts/bench_memory.py --sessions 8 --unconnected       # no sandbox: workers redial
    python scripts/bench_memory.py --sessions 50 --mode subprocess  # without the zygote
    python scripts/bench_memory.py --sessions 50 --ksm off          # without same-page merging

Marginal PSS at N = (PSS of gateway + zygote + workers with N sessions - the same with no
session) / N. Sessions are added in steps (the ``--sessions`` values, ascending) and each
step is measured after ``--settle`` idle seconds (and, when ksmd runs, once it has merged
what it will; the gateway starts it if it may, see ``ksm`` in config/gowa.example.toml).
``--in-process`` also runs every client in one plain Python process (no gateway, no
IPC): the floor the per-process design pays for its isolation. Results: a table on
stdout and ``bench-results/memory-*.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
from benchlib import (
    MB,
    Api,
    Stack,
    machine,
    memory,
    phone_number,
    session_ids,
    table,
    total_pss,
    write_result,
)

from gowa_py.supervisor import ksm

COLUMNS = [
    "mode",
    "ksm",
    "sessions",
    "marginal_pss_mb",
    "avg_rss_mb",
    "avg_pss_mb",
    "avg_uss_mb",
    "gateway_pss_mb",
    "zygote_pss_mb",
]


def _settle_reading(read: Any, seconds: float, samples: int = 3) -> Any:
    """Wait ``seconds``, then take the median of a few readings (by total PSS)."""
    time.sleep(seconds)
    readings = []
    for _ in range(samples):
        readings.append(read())
        time.sleep(1)
    readings.sort(key=lambda r: r[0])
    return readings[len(readings) // 2]


# ------------------------------------------------------------------ gateway


def _wait_for_merging(timeout: float) -> None:
    """With ksmd running, wait until it has merged what it will: two full scans in a row
    that change the merged page count by less than 1 %."""
    if not ksm.running():
        return
    deadline = time.monotonic() + timeout
    counters = ksm.counters()
    scans, sharing = counters.get("full_scans", 0), counters.get("pages_sharing", 0)
    steady = 0
    while steady < 2 and time.monotonic() < deadline:
        time.sleep(1)
        counters = ksm.counters()
        if counters.get("full_scans", 0) == scans:
            continue
        current = counters.get("pages_sharing", 0)
        steady = steady + 1 if abs(current - sharing) <= 0.01 * max(sharing, 1) else 0
        scans, sharing = counters.get("full_scans", 0), current
    print(f"ksm: {sharing * 4096 / MB:.0f} MB merged, {scans} full scans", file=sys.stderr)


def bench_gateway(args: argparse.Namespace, steps: list[int]) -> list[dict[str, Any]]:
    rows = []
    env = {"GOWA_WORKER_MODE": args.mode, "GOWA_KSM": args.ksm, **_env(args.env)}
    with Stack(gateway_env=env) as stack:
        if not args.unconnected:
            stack.sandbox_url = args.sandbox or stack.start_sandbox()
        stack.start_gateway()

        def read() -> tuple[int, dict[str, Any]]:
            tree = stack.gateway_tree()
            parts = {kind: memory(procs) for kind, procs in tree.items()}
            return sum(total_pss(m) for m in parts.values()), parts

        base_total, _ = _settle_reading(read, 3)
        done = 0
        for n in steps:
            ids = session_ids(n)[done:]
            started = time.monotonic()
            asyncio.run(_add_sessions(stack, ids, not args.unconnected))
            print(f"{n} sessions up in {time.monotonic() - started:.1f} s", file=sys.stderr)
            done = n
            if args.ksm != "off":
                _wait_for_merging(args.ksm_wait)
            total, parts = _settle_reading(read, args.settle)
            workers = parts["worker"]
            if len(workers) != n:
                print(f"warning: {len(workers)} workers for {n} sessions", file=sys.stderr)
            count = max(1, len(workers))
            rows.append(
                {
                    "mode": args.mode + ("" if not args.unconnected else " (unconnected)"),
                    "ksm": args.ksm,
                    "sessions": n,
                    "marginal_pss_mb": (total - base_total) / n / MB,
                    "avg_rss_mb": sum(m.rss for m in workers) / count / MB,
                    "avg_pss_mb": sum(m.pss for m in workers) / count / MB,
                    "avg_uss_mb": sum(m.uss for m in workers) / count / MB,
                    "gateway_pss_mb": total_pss(parts["gateway"]) / MB,
                    "zygote_pss_mb": total_pss(parts["zygote"]) / MB,
                }
            )
            print(table(rows[-1:], COLUMNS), file=sys.stderr)
    return rows


async def _add_sessions(stack: Stack, ids: list[str], connect: bool) -> None:
    async with Api(stack.gateway_url, stack.sandbox_url) as api:
        if connect:
            offset = int(ids[0][1:]) if ids else 0
            slots = asyncio.Semaphore(10)

            async def one(n: int, sid: str) -> None:
                async with slots:
                    await api.pair(sid, phone_number(offset + n))

            await asyncio.gather(*(one(n, sid) for n, sid in enumerate(ids)))
        else:
            await asyncio.gather(*(api.create(sid) for sid in ids))
            await asyncio.gather(*(api.wait_status(sid, {"DISCONNECTED"}, 120, 0.5) for sid in ids))


def _env(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


# --------------------------------------------------------------- in-process


def bench_in_process(args: argparse.Namespace, steps: list[int]) -> list[dict[str, Any]]:
    """Every client in one child process, which this process steers over stdin/stdout."""
    rows = []
    with Stack() as stack:
        sandbox = None
        if not args.unconnected:
            sandbox = stack.sandbox_url = args.sandbox or stack.start_sandbox()
        command = [sys.executable, __file__, "--child", "--workdir", str(stack.workdir / "inproc")]
        env = {**os.environ, **_env(args.env)}
        if sandbox:
            command += ["--sandbox", sandbox]
            # Go reads the environment it was exec'd with, so the CA goes in from the start.
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(sandbox + "/sim/info") as response:
                ca_file = stack.workdir / "sandbox-ca.pem"
                ca_file.write_text(json.load(response)["ca_pem"])
            env["SSL_CERT_FILE"] = str(ca_file)
        child = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        stack.processes.append(child)  # type: ignore[arg-type]
        assert child.stdin is not None and child.stdout is not None
        proc = psutil.Process(child.pid)

        def read() -> tuple[int, list[Any]]:
            readings = memory([proc])
            return total_pss(readings), readings

        if child.stdout.readline().strip() != "ready":
            raise SystemExit("in-process child failed; see its stderr")
        base_total, _ = _settle_reading(read, 3)
        for n in steps:
            child.stdin.write(f"{n}\n")
            child.stdin.flush()
            line = child.stdout.readline().strip()
            if line != f"at {n}":
                raise SystemExit(f"in-process child: {line or 'exited'}")
            total, readings = _settle_reading(read, args.settle)
            rows.append(
                {
                    "mode": "in-process" + ("" if not args.unconnected else " (unconnected)"),
                    "sessions": n,
                    "marginal_pss_mb": (total - base_total) / n / MB,
                    "avg_rss_mb": readings[0].rss / n / MB,
                    "avg_pss_mb": readings[0].pss / n / MB,
                    "avg_uss_mb": readings[0].uss / n / MB,
                    "gateway_pss_mb": 0.0,
                    "zygote_pss_mb": 0.0,
                }
            )
            print(table(rows[-1:], COLUMNS), file=sys.stderr)
    return rows


def child_main(workdir: Path, sandbox_url: str | None) -> None:
    """The in-process host: N WhatsAppSession objects, one thread each."""
    from gowa_py.sim import redirect as hooks

    workdir.mkdir(parents=True, exist_ok=True)
    proxy = None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    if sandbox_url:
        with opener.open(sandbox_url + "/sim/info") as response:
            info = json.load(response)
        (workdir / "ca.pem").write_text(info["ca_pem"])
        hooks.trust_ca(str(workdir / "ca.pem"))
        proxy = info.get("proxy") or sandbox_url
    from workers.session import WhatsAppSession
    from workers.system import storefile

    if sandbox_url:
        hooks.patch_root_key(bytes.fromhex(info["root_key"]))

    def post(path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            str(sandbox_url) + path,
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )
        opener.open(request, timeout=30).close()

    connected: set[str] = set()
    lock = threading.Condition()
    sessions = []

    def make_emit(sid: str, phone: str) -> Any:
        def emit(name: str, payload: dict[str, Any]) -> None:
            if name == "session.qr" and sandbox_url:
                threading.Thread(
                    target=post, args=(f"/sim/phones/{phone}/scan", {"qr": payload["qr_code"]})
                ).start()
            elif name == "session.status":
                wanted = "CONNECTED" if sandbox_url else "DISCONNECTED"
                if payload["status"] == wanted:
                    with lock:
                        connected.add(sid)
                        lock.notify_all()

        return emit

    # neonize prints to stdout; keep the real stdout for our own protocol lines.
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def say(text: str) -> None:
        channel.write(text + "\n")
        channel.flush()

    say("ready")
    for line in sys.stdin:
        target = int(line)
        for n in range(len(sessions), target):
            sid, phone = f"b{n:03d}", phone_number(n)
            if sandbox_url:
                post("/sim/phones", {"phone": phone, "push_name": f"Bench {sid}"})
            folder = workdir / sid
            folder.mkdir(exist_ok=True)
            storefile.use_wal(folder / "whatsmeow.db")
            session = WhatsAppSession(
                sid, str(folder / "whatsmeow.db"), make_emit(sid, phone), proxy=proxy
            )
            sessions.append(session)
            threading.Thread(target=session.run, daemon=True).start()
        with lock:
            if not lock.wait_for(lambda t=target: len(connected) >= t, 300):
                say(f"only {len(connected)} of {target} connected")
                os._exit(1)
        say(f"at {target}")
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[10])
    parser.add_argument("--sandbox", help="use this running sandbox instead of starting one")
    parser.add_argument("--unconnected", action="store_true", help="no sandbox: workers redial")
    parser.add_argument("--in-process", action="store_true", help="also measure the floor")
    parser.add_argument("--mode", choices=["zygote", "subprocess"], default="zygote")
    parser.add_argument("--settle", type=float, default=15.0, help="idle seconds before reading")
    parser.add_argument(
        "--ksm", choices=["auto", "off"], default="auto", help="the gateway's ksm setting"
    )
    parser.add_argument(
        "--ksm-wait", type=float, default=300.0, help="longest wait for ksmd to settle (s)"
    )
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the workers")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.workdir, args.sandbox)
        return
    steps = sorted(set(args.sessions))
    rows = bench_gateway(args, steps)
    if args.in_process:
        rows += bench_in_process(args, steps)
    print(table(rows, COLUMNS))
    meta = {"machine": machine(), "command": " ".join(["python", *sys.argv]), **vars(args)}
    # The largest gateway step's figures at the top level, every row under "rows".
    print("written to", write_result("memory", {**rows[len(steps) - 1], "rows": rows}, meta))


if __name__ == "__main__":
    main()
