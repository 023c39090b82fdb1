"""Per-worker memory (RSS, PSS, USS) and CPU, read by the gateway with psutil.

RSS double-counts pages shared between workers; PSS is each process's fair share of
them and is the figure the dashboard totals; USS is what killing the worker would free.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Sample:
    rss: int = 0
    pss: int = 0
    uss: int = 0
    cpu_percent: float = 0.0


class Sampler:
    """Keeps one psutil.Process per pid, since cpu_percent needs the previous reading.

    CPU and RSS are read at every :meth:`sample`; PSS and USS only every
    ``pss_interval`` seconds per worker, reused in between. They come from
    ``/proc/<pid>/smaps_rollup``, for which the kernel walks the worker's page tables:
    far dearer than the rest of a sample, so that read at every sample they were most
    of an idle gateway's CPU (docs/benchmarks.md, "Idle hold"). Each worker's first
    reading is taken at once; the next ones are spread over the interval so that many
    workers started together are not all read in the same tick.
    """

    def __init__(
        self, pss_interval: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._processes: dict[int, psutil.Process] = {}
        self._pss_interval = pss_interval
        self._clock = clock
        self._full: dict[int, tuple[float, int, int]] = {}  # pid -> (next reading, pss, uss)

    def sample(self, pids: list[int]) -> dict[int, Sample]:
        for gone in set(self._processes) - set(pids):
            del self._processes[gone]
            self._full.pop(gone, None)
        now = self._clock()
        samples: dict[int, Sample] = {}
        for pid in pids:
            process = self._processes.get(pid)
            try:
                if process is None:
                    process = self._processes[pid] = psutil.Process(pid)
                    process.cpu_percent(None)
                with process.oneshot():
                    cpu = process.cpu_percent(None)
                    full = self._full.get(pid)
                    if full is None or now >= full[0]:
                        memory = process.memory_full_info()
                        rss = memory.rss
                        pss = getattr(memory, "pss", memory.rss)
                        uss = getattr(memory, "uss", memory.rss)
                        phase = random.uniform(0.5, 1.0) if full is None else 1.0
                        self._full[pid] = (now + self._pss_interval * phase, pss, uss)
                    else:
                        rss = process.memory_info().rss
                        pss, uss = full[1], full[2]
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._processes.pop(pid, None)
                self._full.pop(pid, None)
                continue
            samples[pid] = Sample(rss=rss, pss=pss, uss=uss, cpu_percent=cpu)
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
