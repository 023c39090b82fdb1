"""Idle cost over time: N connected sessions held idle, gateway CPU and worker PSS sampled.

    python scripts/bench_hold.py --sessions 100 --minutes 10

Pairs N sessions through a sandbox, then sends nothing for M minutes while sampling every
``--interval`` seconds: the gateway's CPU (psutil ``cpu_percent`` over the interval, in %
of one core), the CPU of all workers and of the sandbox, and each worker's PSS. The
first ``--warmup`` seconds of the hold are excluded from the CPU figures. PSS growth is
a worker's mean PSS over the last ``--window`` seconds of the hold against its mean over
the first ``--window`` seconds after the warm-up, and the worst worker is reported (a
leak shows there first); the same for USS, which other processes mapping the same files
cannot lower. Means over minutes, not single readings: with the kernel's same-page
merging on, the workers' PSS swings by ~10 % in a cycle of about two minutes (Go
collects at least every two minutes, its writes split merged pages, ksmd merges them
again), so single readings, or one-minute means, showed "growth" of 20-25 % (and once
-4 %) in workers whose PSS had no trend. A window spans at least one such cycle.
A worker that restarted during the hold (new pid) is reported, not compared. No request
is made during the hold (``GET /api/sessions`` is read before and after it).
``--profile`` records the gateway with py-spy (``pip install py-spy``) after the warm-up
(``bench-results/profile-hold.txt``); its sampling adds to the gateway's CPU.
Results: a table on stdout and ``bench-results/hold-*.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
from benchlib import (
    MB,
    Api,
    Stack,
    machine,
    percentile,
    py_spy,
    session_ids,
    table,
    write_result,
)

SUMMARY = [
    "sessions",
    "minutes",
    "gateway_cpu_avg_pct",
    "gateway_cpu_p95_pct",
    "gateway_cpu_max_pct",
    "workers_cpu_avg_pct",
    "sandbox_cpu_avg_pct",
    "worker_pss_avg_mb",
    "max_worker_pss_growth_pct",
    "max_worker_uss_growth_pct",
    "worker_restarts",
]
WORST = ["session", "pid", "pss_warm_mb", "pss_last_mb", "growth_pct", "uss_growth_pct"]


def _cpu(processes: list[psutil.Process]) -> float:
    """Sum of ``cpu_percent(None)``: % of one core since the previous call on each."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.cpu_percent(None)
    return total


def _memory(process: psutil.Process) -> tuple[int, int] | None:
    """(PSS, USS). PSS also falls when other processes map the same files (neonize's
    ``.so``, Python); USS, the worker's private pages, is where a leak shows alone."""
    try:
        info = process.memory_full_info()
    except psutil.Error:
        return None
    return info.pss, info.uss


def _means(readings: list[tuple[float, int, int]]) -> tuple[float, float] | None:
    """Mean (PSS, USS) of ``(time, pss, uss)`` readings; None for none."""
    if not readings:
        return None
    return (
        sum(r[1] for r in readings) / len(readings),
        sum(r[2] for r in readings) / len(readings),
    )


async def _pids(api: Api) -> dict[int, str]:
    """Worker pid -> session id, from the gateway's own view."""
    status, body = await api.gw("GET", "/api/sessions")
    if status != 200:
        raise RuntimeError(f"GET /api/sessions: {status} {body}")
    return {s["worker"]["pid"]: s["id"] for s in body["results"] if s["worker"]["pid"]}


async def _hold(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    ids = session_ids(args.sessions)
    async with Api(stack.gateway_url, stack.sandbox_url) as api:
        started = time.monotonic()
        await api.pair_many(ids)
        print(f"paired {len(ids)} sessions in {time.monotonic() - started:.1f} s", flush=True)
        pids = await _pids(api)
        if len(pids) != len(ids):
            raise RuntimeError(f"{len(ids)} sessions but {len(pids)} workers running")
        tree = stack.gateway_tree()
        gateway = tree["gateway"]
        workers = {pid: psutil.Process(pid) for pid in pids}
        sandbox = [psutil.Process(p.pid) for p in stack.processes if p is not stack.gateway]
        for group in (gateway, list(workers.values()), sandbox):
            _cpu(group)  # start the cpu_percent clocks

        samples: list[dict[str, Any]] = []
        readings_of: dict[int, list[tuple[float, int, int]]] = {}
        hold_s = args.minutes * 60
        began = time.monotonic()
        profiler = None
        while (elapsed := time.monotonic() - began) < hold_s:
            if args.profile and profiler is None and elapsed >= args.warmup:
                profiler = py_spy(gateway[0].pid, "hold", hold_s - elapsed)
            await asyncio.sleep(min(args.interval, max(0.1, hold_s - elapsed)))
            at = time.monotonic() - began
            row = {
                "t_s": round(at, 1),
                "gateway_cpu": round(_cpu(gateway), 2),
                "workers_cpu": round(_cpu(list(workers.values())), 2),
                "sandbox_cpu": round(_cpu(sandbox), 2),
            }
            readings = {pid: _memory(process) for pid, process in workers.items()}
            for pid, reading in readings.items():
                if reading is not None:
                    readings_of.setdefault(pid, []).append((at, *reading))
            present = [v for v in readings.values() if v is not None]
            row["workers_alive"] = len(present)
            row["worker_pss_total_mb"] = round(sum(v[0] for v in present) / MB, 1)
            row["worker_uss_total_mb"] = round(sum(v[1] for v in present) / MB, 1)
            row["warm"] = at > args.warmup
            samples.append(row)
            print(
                f"{row['t_s']:7.1f} s  gateway {row['gateway_cpu']:6.2f} %  "
                f"workers {row['workers_cpu']:6.1f} %  sandbox {row['sandbox_cpu']:5.1f} %  "
                f"worker PSS {row['worker_pss_total_mb']:8.1f} MB "
                f"USS {row['worker_uss_total_mb']:8.1f} MB ({row['workers_alive']})",
                flush=True,
            )
        after = await _pids(api)
        if profiler is not None:
            await asyncio.to_thread(profiler.wait)

    steady = [s for s in samples if s["warm"]] or samples
    gateway_cpu = [s["gateway_cpu"] for s in steady]
    per_worker = []
    hold_end = samples[-1]["t_s"] if samples else 0.0
    for pid, session_id in sorted(pids.items(), key=lambda item: item[1]):
        readings = readings_of.get(pid, [])
        first = _means([r for r in readings if args.warmup < r[0] <= args.warmup + args.window])
        final = _means([r for r in readings if r[0] > hold_end - args.window])
        if first is None or final is None or after.get(pid) != session_id:
            continue
        (pss_warm, uss_warm), (pss_last, uss_last) = first, final
        per_worker.append(
            {
                "session": session_id,
                "pid": pid,
                "pss_warm_mb": round(pss_warm / MB, 2),
                "pss_last_mb": round(pss_last / MB, 2),
                "growth_pct": round(100 * (pss_last - pss_warm) / pss_warm, 2),
                "uss_warm_mb": round(uss_warm / MB, 2),
                "uss_last_mb": round(uss_last / MB, 2),
                "uss_growth_pct": round(100 * (uss_last - uss_warm) / uss_warm, 2),
            }
        )
    growths = [w["growth_pct"] for w in per_worker]
    uss_growths = [w["uss_growth_pct"] for w in per_worker]
    return {
        "sessions": args.sessions,
        "minutes": args.minutes,
        "interval_s": args.interval,
        "warmup_s": args.warmup,
        "window_s": args.window,
        "gateway_cpu_avg_pct": round(sum(gateway_cpu) / len(gateway_cpu), 2),
        "gateway_cpu_p95_pct": percentile(gateway_cpu, 95),
        "gateway_cpu_max_pct": max(gateway_cpu),
        "workers_cpu_avg_pct": round(sum(s["workers_cpu"] for s in steady) / len(steady), 2),
        "sandbox_cpu_avg_pct": round(sum(s["sandbox_cpu"] for s in steady) / len(steady), 2),
        "worker_pss_avg_mb": round(sum(w["pss_last_mb"] for w in per_worker) / len(per_worker), 2)
        if per_worker
        else 0.0,
        "max_worker_pss_growth_pct": max(growths) if growths else None,
        "median_worker_pss_growth_pct": percentile(growths, 50) if growths else None,
        "max_worker_uss_growth_pct": max(uss_growths) if uss_growths else None,
        "worker_restarts": len(ids) - len(per_worker),
        "workers": per_worker,
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before reference")
    parser.add_argument(
        "--window", type=float, default=180.0, help="seconds averaged at each end of the hold"
    )
    parser.add_argument("--mode", choices=["zygote", "subprocess"], default="zygote")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway")
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway after warm-up")
    args = parser.parse_args()
    if args.warmup + 2 * args.window > args.minutes * 60:
        parser.error("the hold must cover --warmup and two --window")
    env = {"GOWA_WORKER_MODE": args.mode, **dict(e.split("=", 1) for e in args.env)}
    with Stack(gateway_env=env) as stack:
        stack.start_sandbox()
        stack.start_gateway()
        result = asyncio.run(_hold(stack, args))
    print(table([result], SUMMARY))
    worst = sorted(result["workers"], key=lambda w: w["growth_pct"], reverse=True)[:5]
    print(table(worst, WORST))
    meta = {"machine": machine(), "command": " ".join(["python", *sys.argv]), **vars(args)}
    print("written to", write_result("hold", result, meta))


if __name__ == "__main__":
    main()
