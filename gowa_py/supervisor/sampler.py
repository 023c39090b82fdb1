"""Per-worker memory (RSS, PSS, USS) and CPU, read by the gateway with psutil.

RSS double-counts pages shared between workers; PSS is each process's fair share of
them and is the figure the dashboard totals; USS is what killing the worker would free.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Sample:
    rss: int = 0
    pss: int = 0
    uss: int = 0
    cpu_percent: float = 0.0


class Sampler:
    """Keeps one psutil.Process per pid, since cpu_percent needs the previous reading."""

    def __init__(self) -> None:
        self._processes: dict[int, psutil.Process] = {}

    def sample(self, pids: list[int]) -> dict[int, Sample]:
        for gone in set(self._processes) - set(pids):
            del self._processes[gone]
        samples: dict[int, Sample] = {}
        for pid in pids:
            process = self._processes.get(pid)
            try:
                if process is None:
                    process = self._processes[pid] = psutil.Process(pid)
                    process.cpu_percent(None)
                with process.oneshot():
                    memory = process.memory_full_info()
                    cpu = process.cpu_percent(None)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._processes.pop(pid, None)
                continue
            samples[pid] = Sample(
                rss=memory.rss,
                pss=getattr(memory, "pss", memory.rss),
                uss=getattr(memory, "uss", memory.rss),
                cpu_percent=cpu,
            )
        return samples


def sample_self() -> Sample:
    process = psutil.Process()
    memory = process.memory_full_info()
    return Sample(
        rss=memory.rss,
        pss=getattr(memory, "pss", memory.rss),
        uss=getattr(memory, "uss", memory.rss),
        cpu_percent=0.0,
    )
