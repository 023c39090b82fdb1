"""Idle cost over time: N connected sessions held idle, gateway CPU and worker PSS sampled.

    python scripts/bench_hold.py --sessions 100 --minutes 10

Pairs N sessions through a sandbox, waits ``--warmup`` seconds, then holds them idle for
``--minutes`` more, sampling every ``--interval`` seconds from the end of pairing: the
gateway's CPU (psutil ``cpu_percent`` over the interval, in % of one core), the CPU of all
workers and of the sandbox, and each worker's PSS, USS and RSS. CPU figures cover the
hold only. A worker's growth is its mean over the last ``--window`` seconds of the hold
against its mean over the first ``--window`` seconds of it; the worst worker is
reported (a leak shows there first), for PSS, for USS (which other processes mapping the
same files cannot lower) and for RSS (which same-page merging cannot move either).

Why the warm-up is 15 minutes: forked workers start out as near copies of each other,
and the kernel's same-page merging (``ksm = "auto"``) folds their identical pages
together; as each worker's Go runtime rewrites its own heap and bookkeeping, some of
those pages stop being alike and are copied back, so PSS and USS rise while RSS stays
flat. Measured on 100 sessions (2026-11-29): the workers' total PSS rose from ~620 MB
three minutes after pairing to ~680 MB at eleven, and stayed there to minute 25; that
rise is reported as ``warmup_pss_rise_pct`` (the hold's first window against the lowest
window mean of the warm-up), not counted as growth. Means over
minutes, not single readings: with merging on, each worker's PSS swings in a cycle of
about two minutes (Go collects at least every two minutes, its writes split merged
pages, ksmd merges them again); single readings of a worker 12 minutes apart differed by
-17 % to +37 % with no trend in the median. A window spans at least one such cycle.
A worker that restarted (new pid) is reported, not compared. No request is made during
the hold (``GET /api/sessions`` is read before and after it). ``--profile`` records the
gateway with py-spy (``pip install py-spy``) during the hold
(``bench-results/profile-hold.txt``); its sampling adds to the gateway's CPU.
Results: a table on stdout and ``bench-results/hold-*.json`` (with every worker's series).
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
    "warmup_s",
    "minutes",
    "gateway_cpu_avg_pct",
    "gateway_cpu_p95_pct",
    "gateway_cpu_max_pct",
    "workers_cpu_avg_pct",
    "sandbox_cpu_avg_pct",
    "worker_pss_avg_mb",
    "warmup_pss_rise_pct",
    "max_worker_pss_growth_pct",
    "median_worker_pss_growth_pct",
    "max_worker_uss_growth_pct",
    "max_worker_rss_growth_pct",
    "worker_restarts",
]
WORST = [
    "session",
    "pid",
    "pss_warm_mb",
    "pss_last_mb",
    "growth_pct",
    "uss_growth_pct",
    "rss_growth_pct",
]

#: (seconds since pairing, PSS, USS, RSS) of one worker.
Reading = tuple[float, int, int, int]


def _cpu(processes: list[psutil.Process]) -> float:
    """Sum of ``cpu_percent(None)``: % of one core since the previous call on each."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.cpu_percent(None)
    return total


def _memory(process: psutil.Process) -> tuple[int, int, int] | None:
    """(PSS, USS, RSS). PSS also falls when other processes map the same files (neonize's
    ``.so``, Python); USS, the worker's private pages, is where a leak shows alone; RSS is
    what the worker touches, merged or not."""
    try:
        info = process.memory_full_info()
    except psutil.Error:
        return None
    return info.pss, info.uss, info.rss


def _means(series: list[tuple[float, ...]], start: float, end: float) -> tuple[float, ...] | None:
    """Means of the values of the ``(t, *values)`` readings with ``start < t <= end``
    (for a worker: PSS, USS, RSS); None for none."""
    chosen = [r for r in series if start < r[0] <= end]
    if not chosen:
        return None
    return tuple(sum(column) / len(chosen) for column in zip(*(r[1:] for r in chosen), strict=True))


def _pct(before: float, after: float) -> float:
    return round(100 * (after - before) / before, 2)


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
        readings_of: dict[int, list[Reading]] = {}
        end_s = args.warmup + args.minutes * 60
        began = time.monotonic()
        profiler = None
        while (elapsed := time.monotonic() - began) < end_s:
            if args.profile and profiler is None and elapsed >= args.warmup:
                profiler = py_spy(gateway[0].pid, "hold", end_s - elapsed)
            await asyncio.sleep(min(args.interval, max(0.1, end_s - elapsed)))
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
            row["worker_rss_total_mb"] = round(sum(v[2] for v in present) / MB, 1)
            row["warm"] = at > args.warmup
            samples.append(row)
            print(
                f"{row['t_s']:7.1f} s  gateway {row['gateway_cpu']:6.2f} %  "
                f"workers {row['workers_cpu']:6.1f} %  sandbox {row['sandbox_cpu']:5.1f} %  "
                f"worker PSS {row['worker_pss_total_mb']:8.1f} MB "
                f"USS {row['worker_uss_total_mb']:8.1f} MB ({row['workers_alive']})"
                f"{'' if row['warm'] else '  warm-up'}",
                flush=True,
            )
        after = await _pids(api)
        if profiler is not None:
            await asyncio.to_thread(profiler.wait)

    held = [s for s in samples if s["warm"]] or samples
    gateway_cpu = [s["gateway_cpu"] for s in held]
    hold_end = samples[-1]["t_s"] if samples else 0.0
    first_window = (args.warmup, args.warmup + args.window)
    last_window = (hold_end - args.window, hold_end)
    per_worker = []
    for pid, session_id in sorted(pids.items(), key=lambda item: item[1]):
        readings = readings_of.get(pid, [])
        first = _means(readings, *first_window)
        final = _means(readings, *last_window)
        if first is None or final is None or after.get(pid) != session_id:
            continue
        per_worker.append(
            {
                "session": session_id,
                "pid": pid,
                "pss_warm_mb": round(first[0] / MB, 2),
                "pss_last_mb": round(final[0] / MB, 2),
                "growth_pct": _pct(first[0], final[0]),
                "uss_warm_mb": round(first[1] / MB, 2),
                "uss_last_mb": round(final[1] / MB, 2),
                "uss_growth_pct": _pct(first[1], final[1]),
                "rss_growth_pct": _pct(first[2], final[2]),
            }
        )
    totals = [(s["t_s"], s["worker_pss_total_mb"]) for s in samples]
    trough = min(
        (
            mean[0]
            for start, _ in totals
            if start + args.window <= args.warmup
            and (mean := _means(totals, start, start + args.window))
        ),
        default=None,
    )
    held_total = _means(totals, *first_window)
    growths = [w["growth_pct"] for w in per_worker]
    return {
        "sessions": args.sessions,
        "warmup_s": args.warmup,
        "minutes": args.minutes,
        "interval_s": args.interval,
        "window_s": args.window,
        "gateway_cpu_avg_pct": round(sum(gateway_cpu) / len(gateway_cpu), 2),
        "gateway_cpu_p95_pct": percentile(gateway_cpu, 95),
        "gateway_cpu_max_pct": max(gateway_cpu),
        "workers_cpu_avg_pct": round(sum(s["workers_cpu"] for s in held) / len(held), 2),
        "sandbox_cpu_avg_pct": round(sum(s["sandbox_cpu"] for s in held) / len(held), 2),
        "worker_pss_avg_mb": round(sum(w["pss_last_mb"] for w in per_worker) / len(per_worker), 2)
        if per_worker
        else 0.0,
        "warmup_pss_rise_pct": _pct(trough, held_total[0]) if trough and held_total else None,
        "max_worker_pss_growth_pct": max(growths) if growths else None,
        "median_worker_pss_growth_pct": percentile(growths, 50) if growths else None,
        "max_worker_uss_growth_pct": max((w["uss_growth_pct"] for w in per_worker), default=None),
        "max_worker_rss_growth_pct": max((w["rss_growth_pct"] for w in per_worker), default=None),
        "worker_restarts": len(ids) - len(per_worker),
        "workers": per_worker,
        "samples": samples,
        "series": {
            pids[pid]: [
                [round(t, 1), pss // 1024, uss // 1024, rss // 1024] for t, pss, uss, rss in r
            ]
            for pid, r in readings_of.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=10.0, help="the hold after the warm-up")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument(
        "--warmup", type=float, default=900.0, help="seconds from pairing to the hold"
    )
    parser.add_argument(
        "--window", type=float, default=180.0, help="seconds averaged at each end of the hold"
    )
    parser.add_argument("--mode", choices=["zygote", "subprocess"], default="zygote")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway")
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway during the hold")
    args = parser.parse_args()
    if 2 * args.window > args.minutes * 60 or args.window > args.warmup:
        parser.error("the hold must cover two --window, the warm-up one")
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
